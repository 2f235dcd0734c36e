"""BFCL round trip: every ground-truth call rendered as an assistant turn, then parsed back."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from glm_testdata import BFCL, bfcl_cases, need, strict_equal

from glm_agent.glm import get_format
from glm_agent.glm._typing import ArgTyper
from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolDefinition, UserMessage

pytestmark = pytest.mark.shared
TOOL_FAMILIES = ("glm4", "glm4-0414", "glm45", "glm47")


def raw_output(family: str, tools: list[ToolDefinition], calls: list[tuple[str, Any]]) -> str:
    """What the model emits for `calls`: the rendered assistant turn after `<|assistant|>`."""
    fmt = get_format(family)
    prefix: list[Message] = [UserMessage(content="question")]
    turn = AssistantMessage(
        content="",
        tool_calls=tuple(ToolCall.from_args(name, args) for name, args in calls),
    )
    before = fmt.render(prefix, tools, add_generation_prompt=False)
    after = fmt.render([*prefix, turn], tools, add_generation_prompt=False)
    assert after.startswith(before + "<|assistant|>")
    return after[len(before) + len("<|assistant|>") :] + "<|observation|>"


def typed(family: str, tools: list[ToolDefinition], name: str, args: dict[str, Any]) -> Any:
    """The arguments as the format can carry them: XML families type values by the schema."""
    if family in ("glm4", "glm4-0414"):
        return args
    tool = next(t for t in tools if t.name == name)
    typer = ArgTyper(tool.parameters)
    return {
        k: typer(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        for k, v in args.items()
    }


@pytest.mark.parametrize("family", TOOL_FAMILIES)
def test_bfcl_round_trip(family: str) -> None:
    need(BFCL / "possible_answer")
    counts: Counter[str] = Counter()
    for case_id, tools, calls in bfcl_cases():
        raw = raw_output(family, tools, calls)
        got = get_format(family).parse(raw, tools)
        assert got.content is None and got.reasoning is None, case_id
        assert len(got.tool_calls) == len(calls), case_id
        for call, (name, args) in zip(got.tool_calls, calls, strict=True):
            parsed = json.loads(call.arguments)
            assert call.name == name, case_id
            assert strict_equal(parsed, typed(family, tools, name, args)), (case_id, parsed, args)
            counts["calls"] += 1
            counts["same as the original"] += strict_equal(parsed, args)
        counts["outputs"] += 1
    assert counts["outputs"] > 2000
    if family in ("glm4", "glm4-0414"):  # JSON arguments: always the original
        assert counts["same as the original"] == counts["calls"]
    print(family, dict(counts))


def test_typing_changes_only_mistyped_values() -> None:
    """Where XML read-back differs from BFCL's value, the value did not fit its schema type."""
    need(BFCL / "possible_answer")
    for _case_id, tools, calls in bfcl_cases():
        for name, args in calls:
            back = typed("glm45", tools, name, args)
            props = next(t for t in tools if t.name == name).parameters.get("properties", {})
            for k, v in args.items():
                if not strict_equal(back[k], v):
                    t = props.get(k, {}).get("type")
                    assert (t == "string") != isinstance(v, str) or t is None, (k, v, back[k])
