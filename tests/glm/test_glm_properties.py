"""Property tests: parsers never raise, streaming equals one-shot, render → parse round-trips."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent.glm import FAMILIES, get_format
from glm_agent.messages import (
    AssistantMessage,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallEnd,
    ToolDefinition,
    UserMessage,
)

SETTINGS = settings(max_examples=60, deadline=None)
TOOLS = [
    ToolDefinition(
        name="get_weather",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    ),
    ToolDefinition(name="python", parameters={"type": "object", "properties": {}}),
    ToolDefinition(name="simple_browser"),
]
PIECES = [
    "<tool_call>",
    "</tool_call>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<|assistant|>",
    "<|observation|>",
    "<|user|>",
    "<|endoftext|>",
    "get_weather",
    "python",
    "simple_browser",
    "city",
    "days",
    "```",
    "\n",
    " ",
    "\r\n",
    "{",
    "}",
    '"',
    ":",
    ",",
    "[",
    "]",
    "(",
    ")",
    "null",
    "True",
    "1",
    "2.5",
    "a",
    "中",
    "<",
    "|",
    "search",
    '{"city": "北京"}',
    "```python\nprint(1)\n```",
]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=40).map("".join)


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def key(m: AssistantMessage) -> tuple[Any, ...]:
    return m.content, m.reasoning, [(c.name, c.arguments) for c in m.tool_calls]


@SETTINGS
@given(
    family=st.sampled_from(FAMILIES),
    raw=texts,
    thinking=st.sampled_from([None, True, False]),
    cuts=st.lists(st.integers(0, 400), max_size=12),
)
def test_parse_never_raises_and_stream_agrees(
    family: str, raw: str, thinking: bool | None, cuts: list[int]
) -> None:
    fmt = get_format(family)
    ref = fmt.parse(raw, TOOLS, enable_thinking=thinking)
    points = sorted({c % (len(raw) + 1) for c in cuts})
    parts = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    p = fmt.stream_parser(TOOLS, enable_thinking=thinking)
    events = [e for d in parts for e in p.feed(d)] + p.finish()
    assert p.result is not None
    assert key(p.result) == key(ref)
    if p.consistent:
        text = "".join(e.content for e in events if isinstance(e, TextDelta))
        assert text == (ref.content or "")
        thought = "".join(e.content for e in events if isinstance(e, ReasoningDelta))
        assert thought == (ref.reasoning or "")
        assert [e.call for e in events if isinstance(e, ToolCallEnd)] == list(p.result.tool_calls)
    else:  # the documented exceptions: a late </think>, a repeated key, a damaged call
        damaged = any(not is_json_object(c.arguments) for c in p.result.tool_calls)
        assert "</think>" in raw or raw.count("<arg_key>") > 1 or damaged


# --- render → parse round trip over schema-valid calls ----------------------------------------

SAFE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
).filter(lambda s: not any(t in s for t in ("<arg_", "</arg_", "tool_call>", "<|", "think>")))
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
KINDS: dict[str, tuple[dict[str, Any], st.SearchStrategy[Any]]] = {
    "string": ({"type": "string"}, SAFE),
    "integer": ({"type": "integer"}, st.integers(-(10**12), 10**12)),
    "number": ({"type": "number"}, st.floats(allow_nan=False, allow_infinity=False)),
    "boolean": ({"type": "boolean"}, st.booleans()),
    "array": ({"type": "array", "items": {"type": "integer"}}, st.lists(st.integers(), max_size=4)),
    "object": (
        {"type": "object"},
        st.dictionaries(IDENT, SAFE | st.integers() | st.none(), max_size=3),
    ),
    "nullable": (
        {"type": ["string", "null"]},
        st.none() | SAFE.filter(lambda s: s.strip() != "null"),
    ),
    "untyped": ({}, st.integers() | st.booleans() | st.lists(SAFE, max_size=3) | st.none()),
}


@st.composite
def tool_and_calls(draw: st.DrawFn) -> tuple[ToolDefinition, list[dict[str, Any]]]:
    params = draw(st.dictionaries(IDENT, st.sampled_from(sorted(KINDS)), max_size=5))
    schema = {"type": "object", "properties": {k: KINDS[v][0] for k, v in params.items()}}
    name = draw(IDENT.filter(lambda s: s not in ("python", "simple_browser")))
    calls = []
    for _ in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.sampled_from(sorted(params)), unique=True)) if params else []
        calls.append({k: draw(KINDS[params[k]][1]) for k in chosen})
    return ToolDefinition(name=name, parameters=schema), calls


@SETTINGS
@given(
    family=st.sampled_from(["glm4", "glm4-0414", "glm45", "glm47", "glm5", "glm52", "glm53"]),
    case=tool_and_calls(),
    thinking=st.sampled_from([None, True, False]),
)
def test_render_parse_round_trip(
    family: str, case: tuple[ToolDefinition, list[dict[str, Any]]], thinking: bool | None
) -> None:
    tool, calls = case
    fmt = get_format(family)
    turn = AssistantMessage(tool_calls=tuple(ToolCall.from_args(tool.name, a) for a in calls))
    prefix = [UserMessage(content="q")]
    before = fmt.render(prefix, [tool], add_generation_prompt=False, enable_thinking=thinking)
    after = fmt.render(
        [*prefix, turn], [tool], add_generation_prompt=False, enable_thinking=thinking
    )
    raw = after[len(before) + len("<|assistant|>") :]
    if fmt.opens_thinking(None):  # the prompt opened <think>: the output starts inside it
        raw = raw.removeprefix("<think>")
    got = fmt.parse(raw, [tool], enable_thinking=None)
    assert got.content is None
    assert [c.name for c in got.tool_calls] == [tool.name] * len(calls)
    assert [json.loads(c.arguments) for c in got.tool_calls] == calls
