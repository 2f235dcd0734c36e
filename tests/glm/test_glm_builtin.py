"""glm-4-9b-chat's built-in `python` and `simple_browser` tools."""

from __future__ import annotations

import json

import pytest

from glm_agent.glm import get_format
from glm_agent.messages import AssistantMessage, ToolCall, ToolDefinition, UserMessage

PY = ToolDefinition(name="python", description="run code")
BROWSER = ToolDefinition(name="simple_browser", description="browse")
FMT = get_format("glm4")


def test_python_code_block_is_a_call() -> None:
    raw = "python\n```python\nimport math\nprint(math.pi)\n```<|observation|>"
    m = FMT.parse(raw, [PY])
    assert m.content is None
    assert json.loads(m.tool_calls[0].arguments) == {"code": "import math\nprint(math.pi)"}


def test_python_needs_the_tool_and_a_fence() -> None:
    raw = "python\n```python\nprint(1)\n```"
    assert FMT.parse(raw).tool_calls == ()
    assert FMT.parse(raw).content == raw
    assert FMT.parse("python\nprint(1)", [PY]).content == "python\nprint(1)"
    assert FMT.parse('python\n{"code": "1"}', [PY]).tool_calls[0].arguments == '{"code": "1"}'


@pytest.mark.parametrize(
    ("body", "args"),
    [
        ('search("天气 北京")', {"action": "search", "query": "天气 北京"}),
        ('search("x", recency_days=7)', {"action": "search", "query": "x", "recency_days": 7}),
        ("search('x', 3)", {"action": "search", "query": "x", "recency_days": 3}),
        ("mclick([1, 2, 5])", {"action": "mclick", "ids": [1, 2, 5]}),
        ('open_url("https://example.com")', {"action": "open_url", "url": "https://example.com"}),
    ],
)
def test_browser_calls(body: str, args: dict[str, object]) -> None:
    m = FMT.parse(f"simple_browser\n{body}<|observation|>", [BROWSER])
    assert [json.loads(c.arguments) for c in m.tool_calls] == [args]
    turn = AssistantMessage(tool_calls=(ToolCall.from_args("simple_browser", args),))
    prompt = FMT.render([UserMessage(content="q"), turn], [BROWSER], add_generation_prompt=False)
    raw = prompt.rsplit("<|assistant|>", 1)[1]
    assert [json.loads(c.arguments) for c in FMT.parse(raw, [BROWSER]).tool_calls] == [args]


@pytest.mark.parametrize(
    "body", ["search(x)", "delete('a')", "search()", "mclick([1], ids=[2])", "os.system('x')", "("]
)
def test_bad_browser_calls_are_content(body: str) -> None:
    m = FMT.parse(f"simple_browser\n{body}", [BROWSER])
    assert m.tool_calls == () and m.content == f"simple_browser\n{body}"


def test_builtin_blocks_and_round_trip() -> None:
    code = "for i in range(3):\n    print(i)\n"
    turn = AssistantMessage(tool_calls=(ToolCall.from_args("python", {"code": code}),))
    prompt = FMT.render([UserMessage(content="run")], [PY, BROWSER], add_generation_prompt=False)
    assert "\n## python\n\n当你向 `python`" in prompt and "## simple_browser" in prompt
    full = FMT.render([UserMessage(content="run"), turn], [PY], add_generation_prompt=False)
    assert full.endswith(f"<|assistant|>python\n```python\n{code}\n```")
    raw = full.rsplit("<|assistant|>", 1)[1]
    assert json.loads(FMT.parse(raw, [PY]).tool_calls[0].arguments) == {"code": code}
