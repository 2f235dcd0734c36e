"""Conformance corpus (../shared/glm/conformance): render and parse cases, 100% exact."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from glm_testdata import (
    CONFORMANCE,
    SUPERSEDED,
    as_expected,
    expected_of,
    jsonl,
    need,
    strict_equal,
    tools_of,
)

from glm_agent.glm import get_format
from glm_agent.messages import (
    ReasoningDelta,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    messages_from_openai,
)

RENDER = jsonl(CONFORMANCE / "render_cases.jsonl")
PARSE = jsonl(CONFORMANCE / "parse_cases.jsonl")
pytestmark = pytest.mark.shared


def test_corpus_present() -> None:
    need(CONFORMANCE / "render_cases.jsonl")
    need(CONFORMANCE / "parse_cases.jsonl")
    assert RENDER and PARSE


def render_case(rec: dict[str, Any]) -> str:
    return get_format(rec["family"]).render(
        messages_from_openai(rec["messages"]),
        tools_of(rec),
        add_generation_prompt=rec["add_generation_prompt"],
        enable_thinking=rec["enable_thinking"],
        **rec.get("extra_template_kwargs", {}),
    )


@pytest.mark.parametrize("rec", RENDER, ids=[r["id"] for r in RENDER])
def test_render_case(rec: dict[str, Any]) -> None:
    assert render_case(rec) == rec["expected"]


@pytest.mark.parametrize("rec", PARSE, ids=[r["id"] for r in PARSE])
def test_parse_case(rec: dict[str, Any]) -> None:
    got = get_format(rec["family"]).parse(
        rec["raw"], tools_of(rec), enable_thinking=rec["enable_thinking"]
    )
    assert strict_equal(as_expected(got), expected_of(rec)), (as_expected(got), expected_of(rec))
    assert len({c.id for c in got.tool_calls}) == len(got.tool_calls)


def test_superseded_cases_are_in_the_corpus() -> None:
    """Each case issue 20 overrules exists, and its corpus value runs a call with less."""
    need(CONFORMANCE / "parse_cases.jsonl")
    by_id = {r["id"]: r for r in PARSE}
    for case_id, value in SUPERSEDED.items():
        old = by_id[case_id]["expected"]
        assert [c["name"] for c in old["tool_calls"]] == [c["name"] for c in value["tool_calls"]]
        assert all(isinstance(c["arguments"], str) for c in value["tool_calls"])


def test_every_case_passes_per_family() -> None:
    """Pass counts per family and file (the report quotes them)."""
    need(CONFORMANCE / "render_cases.jsonl")
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for rec in RENDER:
        total["render " + rec["family"]] += 1
        passed["render " + rec["family"]] += render_case(rec) == rec["expected"]
    for rec in PARSE:
        got = get_format(rec["family"]).parse(
            rec["raw"], tools_of(rec), enable_thinking=rec["enable_thinking"]
        )
        total["parse " + rec["family"]] += 1
        passed["parse " + rec["family"]] += strict_equal(as_expected(got), expected_of(rec))
    assert passed == total


def stream(rec: dict[str, Any], parts: list[str]) -> tuple[Any, list[Any], bool]:
    fmt = get_format(rec["family"])
    p = fmt.stream_parser(tools_of(rec), enable_thinking=rec["enable_thinking"])
    events: list[Any] = []
    for d in parts:
        events += p.feed(d)
    events += p.finish()
    return p.result, events, p.consistent


def check_stream(rec: dict[str, Any], parts: list[str]) -> None:
    ref = get_format(rec["family"]).parse(
        rec["raw"], tools_of(rec), enable_thinking=rec["enable_thinking"]
    )
    result, events, consistent = stream(rec, parts)
    assert result is not None
    assert as_expected(result) == as_expected(ref)
    assert strict_equal(as_expected(result), expected_of(rec))
    assert consistent
    assert "".join(e.content for e in events if isinstance(e, TextDelta)) == (result.content or "")
    text = "".join(e.content for e in events if isinstance(e, ReasoningDelta))
    assert text == (result.reasoning or "")
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [e.call for e in ends] == list(result.tool_calls)
    assert [e.index for e in ends] == list(range(len(ends)))
    started = {e.id for e in events if isinstance(e, ToolCallStart)}
    for call in result.tool_calls:
        assert call.id in started
        deltas = [e.delta for e in events if isinstance(e, ToolCallArgsDelta) and e.id == call.id]
        assert "".join(deltas) == call.arguments


@pytest.mark.parametrize("rec", PARSE, ids=[r["id"] for r in PARSE])
def test_stream_every_split_point(rec: dict[str, Any]) -> None:
    raw = rec["raw"]
    step = 1 if len(raw) <= 400 else len(raw) // 100  # long outputs: 100 points, and random splits
    for i in range(0, len(raw) + 1, step):
        check_stream(rec, [raw[:i], raw[i:]])
    check_stream(rec, list(raw))  # one character at a time


@pytest.mark.parametrize("rec", PARSE, ids=[r["id"] for r in PARSE])
def test_stream_random_splits(rec: dict[str, Any]) -> None:
    rng = random.Random(rec["id"])
    raw = rec["raw"]
    for _ in range(12):
        parts, i = [], 0
        while i < len(raw):
            k = rng.randint(1, 9)
            parts.append(raw[i : i + k])
            i += k
        check_stream(rec, parts)


# --- the documented limits of streaming ----------------------------------------------------------

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_stream_holds_a_possible_tool_name() -> None:
    rec = {"family": "glm4", "tools": WEATHER, "enable_thinking": None}
    p = get_format("glm4").stream_parser(tools_of(rec))
    assert p.feed("get_wea") == []  # may still become a call
    assert [e.name for e in p.feed("ther\n{") if isinstance(e, ToolCallStart)] == ["get_weather"]
    events = p.feed('"city": "x"}') + p.finish()
    assert [type(e).__name__ for e in events] == ["ToolCallArgsDelta", "ToolCallEnd"]
    p = get_format("glm4").stream_parser(tools_of(rec))
    assert [e.content for e in p.feed("get_news")] == ["get_news"]  # type: ignore[union-attr]


def test_truncated_call_is_started_then_becomes_content() -> None:
    rec = {"family": "glm47", "tools": WEATHER, "enable_thinking": False}
    raw = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>北"
    result, events, consistent = stream(rec, list(raw))
    assert consistent and result.tool_calls == () and result.content == raw
    assert [type(e).__name__ for e in events].count("ToolCallStart") == 1
    assert not any(isinstance(e, ToolCallEnd) for e in events)
    assert "".join(e.content for e in events if isinstance(e, TextDelta)) == raw


def test_late_think_end_is_flagged() -> None:
    rec = {"family": "glm45", "tools": [], "enable_thinking": False}
    result, _events, consistent = stream(rec, ["\nplain text ", "then</think>answer"])
    assert (result.reasoning, result.content) == ("plain text then", "answer")
    assert not consistent
