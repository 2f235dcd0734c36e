"""The public surface of glm_agent.glm: sorted `__all__`, light imports, formats' errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import glm_agent.glm as glm
from glm_agent.exceptions import UserError
from glm_agent.messages import AssistantMessage, ToolCall, ToolDefinition, ToolMessage, UserMessage


def test_all_is_sorted_and_importable() -> None:
    def isort_style(name: str) -> tuple[int, str]:  # ruff RUF022: CONSTANTS, Classes, functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2), name

    assert glm.__all__ == sorted(glm.__all__, key=isort_style)
    for name in glm.__all__:
        if name not in ("GLMTokenizer", "IncrementalDecoder"):
            assert getattr(glm, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, glm_agent.glm as g; g.get_format('glm45').parse('x');"
        "bad = [m for m in ('tiktoken', 'jinja2', 'torch', 'transformers') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = glm.NoSuchThing  # type: ignore[attr-defined]


def test_chatglm3_refuses_tools() -> None:
    fmt = glm.get_format("chatglm3")
    with pytest.raises(UserError, match="no tool"):
        fmt.render([UserMessage(content="hi")], [ToolDefinition(name="f")])
    with pytest.raises(UserError, match="message 1"):
        fmt.render([UserMessage(content="hi"), ToolMessage(content="1", tool_call_id="c")])
    assert fmt.parse("  你好 <|user|>").content == "你好"


def test_xml_render_needs_object_arguments() -> None:
    turn = AssistantMessage(tool_calls=(ToolCall(name="f", arguments="[1]"),))
    with pytest.raises(UserError, match="JSON object"):
        glm.get_format("glm47").render([UserMessage(content="q"), turn])


def test_parse_gives_fresh_ids_and_compact_json() -> None:
    tools = [ToolDefinition(name="f", parameters={"properties": {"a": {"type": "integer"}}})]
    raw = "<tool_call>f<arg_key>a</arg_key><arg_value>1</arg_value></tool_call>" * 2
    m = glm.get_format("glm47").parse(raw, tools, enable_thinking=False)
    assert [c.arguments for c in m.tool_calls] == ['{"a": 1}', '{"a": 1}']
    assert m.tool_calls[0].id != m.tool_calls[1].id
    assert m.tool_calls[0].id.startswith("call_")


def test_stream_parser_after_finish() -> None:
    p = glm.get_format("glm4").stream_parser()
    with pytest.raises(RuntimeError, match="finish"):
        _ = p.result
    assert [e.content for e in p.feed("hi ")] == ["hi"]  # type: ignore[union-attr]
    assert p.finish() == [] and p.finish() == []
    assert p.result.content == "hi"
    with pytest.raises(RuntimeError):
        p.feed("more")


def test_generation_prompt_matches_render() -> None:
    for family in glm.FAMILIES:
        fmt = glm.get_format(family)
        for thinking in (None, True, False):
            prompt = fmt.render([UserMessage(content="q")], enable_thinking=thinking)
            assert prompt.endswith(fmt.generation_prompt(thinking))


def test_pathological_values_do_not_raise() -> None:
    tools = [ToolDefinition(name="f")]
    deep = "[" * 100_000 + "]" * 100_000
    raw = f"<tool_call>f<arg_key>a</arg_key><arg_value>{deep}</arg_value></tool_call>"
    m = glm.get_format("glm45").parse(raw, tools)
    assert m.tool_calls[0].name == "f"
    assert glm.get_format("glm4").parse("f\n" + deep, tools).content == "f\n" + deep
