"""Loaders and comparisons shared by the GLM tests (reference data lives in ../shared)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glm_agent.messages import AssistantMessage, ToolDefinition

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CONFORMANCE = SHARED / "glm" / "conformance"
TEMPLATES = SHARED / "glm" / "templates"
BFCL = SHARED / "data" / "bfcl"
BFCL_CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)


def need(path: Path) -> Path:
    """`path`, or skip the test with a reason when the reference data is absent."""
    if not path.exists():
        pytest.skip(f"reference data not found: {path}")
    return path


def jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file ([] when absent: the tests using it skip)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def strict_equal(a: Any, b: Any) -> bool:
    """JSON equality that also compares types: True != 1 and 7.0 != 7."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def arguments_of(arguments: str) -> Any:
    """A call's decoded arguments, or its raw text when it is a damaged call (not JSON)."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def as_expected(m: AssistantMessage) -> dict[str, Any]:
    """A parsed message in the corpus's `expected` shape (a damaged call: raw text)."""
    return {
        "content": m.content,
        "reasoning": m.reasoning,
        "tool_calls": [
            {"name": c.name, "arguments": arguments_of(c.arguments)} for c in m.tool_calls
        ],
    }


# Cases whose expected value issue 20 overrules: the corpus (README §5, "Incomplete argument
# pairs are dropped ... and the call is kept") runs such a call with the rest of its arguments;
# a call whose arguments cannot be read intact must instead go back to the model as an error,
# so it keeps its raw argument text (not JSON: the agent loop answers "invalid arguments").
SUPERSEDED: dict[str, dict[str, Any]] = {
    "parse-glm45-123-malformed-missing-end-arg-key": {
        "content": None,
        "reasoning": None,
        "tool_calls": [
            {
                "name": "get_weather",
                "arguments": "\n<arg_key>city\n<arg_value>北京</arg_value>\n<arg_key>days</arg_key>"
                "\n<arg_value>2</arg_value>\n",
            }
        ],
    },
}


def expected_of(rec: dict[str, Any]) -> dict[str, Any]:
    """The expected parse of a corpus record (issue 20's value where it overrules the corpus)."""
    return SUPERSEDED.get(rec["id"], rec["expected"])


def tools_of(rec: dict[str, Any]) -> list[ToolDefinition]:
    """The record's OpenAI tools as definitions (key order kept)."""
    return [ToolDefinition.from_openai(t) for t in rec.get("tools") or []]


# --- BFCL (conformance README §6) -------------------------------------------------------------

_TYPES = {"dict": "object", "float": "number", "tuple": "array"}


def convert_schema(schema: Any) -> Any:
    """BFCL schema → JSON schema: dict/float/tuple renamed, `any` untyped, no `optional`."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "optional":
            continue
        if k == "type":
            if v == "any":
                continue
            out[k] = _TYPES.get(v, v)
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: convert_schema(p) for name, p in v.items()}
        elif k == "items":
            out[k] = convert_schema(v)
        else:
            out[k] = v
    return out


def bfcl_tool(fn: dict[str, Any]) -> ToolDefinition:
    """One BFCL function as a tool definition."""
    return ToolDefinition(
        name=fn["name"].replace(".", "_"),
        description=fn.get("description", ""),
        parameters=convert_schema(fn["parameters"]),
    )


_OMIT = object()


def _truth(allowed: Any) -> Any:
    if isinstance(allowed, list):
        for v in allowed:
            if v != "":
                return _truth_value(v)
        return _OMIT
    return _truth_value(allowed)


def _truth_value(v: Any) -> Any:
    if isinstance(v, dict):
        out = {}
        for k, a in v.items():
            t = _truth(a)
            if t is not _OMIT:
                out[k] = t
        return out
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [_truth_value(x) for x in v]
    return v


def bfcl_cases() -> Iterator[tuple[str, list[ToolDefinition], list[tuple[str, dict[str, Any]]]]]:
    """(id, tools, ground-truth calls) for every BFCL entry with a possible answer."""
    for cat in BFCL_CATEGORIES:
        questions = {r["id"]: r for r in jsonl(BFCL / f"BFCL_v4_{cat}.json")}
        for ans in jsonl(BFCL / "possible_answer" / f"BFCL_v4_{cat}.json"):
            q = questions.get(ans["id"])
            if q is None:
                continue
            tools = [bfcl_tool(fn) for fn in q["function"]]
            calls = []
            for call in ans["ground_truth"]:
                for name, args in call.items():
                    calls.append((name.replace(".", "_"), _truth_value(args)))
            yield ans["id"], tools, calls
