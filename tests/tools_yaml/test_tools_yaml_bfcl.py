"""Every BFCL v4 function definition as a registry; ground truth accepted, mutations rejected."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from glm_agent.exceptions import ToolArgumentsError, ToolDefinitionError
from glm_agent.tools import (
    BfclNames,
    bfcl_definition,
    bfcl_ground_truth,
    bfcl_schema,
    mutate_arguments,
    registry_from_bfcl,
)

_PY = {
    "string": (str,),
    "integer": (int,),
    "float": (int, float),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "tuple": (list,),
    "dict": (dict,),
}


def bfcl_native_ok(schema: dict[str, Any], value: Any, required: bool) -> bool:
    """BFCL's own reading of a value, straight from the unconverted definition (independent of
    the JSON Schema conversion): Python types, enums, nested properties and items; a declared
    default is always acceptable for an optional argument."""
    if not required and "default" in schema and value == schema["default"]:
        return True
    t = schema.get("type", "any")
    if t != "any":
        if isinstance(value, bool) and t not in ("boolean",):
            return False
        if t == "integer" and isinstance(value, float):
            if not value.is_integer():
                return False
        elif not isinstance(value, _PY[t]):
            return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return all(bfcl_native_ok(schema["items"], v, True) for v in value)
    if isinstance(value, dict) and "properties" in schema:
        return object_ok(schema, value, top=False)
    return True


def object_ok(schema: dict[str, Any], args: dict[str, Any], top: bool = True) -> bool:
    """Arguments of a call (`top`: unknown keys refused) or a nested dict (extra keys allowed:
    BFCL's nested properties are often examples, like `param1`)."""
    props = schema.get("properties", {})
    req = schema.get("required", [])
    if any(r not in args for r in req):
        return False
    if top and any(a not in props for a in args):
        return False
    return all(bfcl_native_ok(props[a], v, a in req) for a, v in args.items() if a in props)


def names_argument(message: str, arg: str) -> bool:
    return any(form in message for form in (repr(arg), f" {arg}:", f" {arg}."))


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_conversion_follows_conformance_section_6() -> None:
    fn = {
        "name": "math.hypot",
        "description": "Norm.",
        "parameters": {
            "type": "dict",
            "properties": {
                "x": {"type": "float", "description": "X.", "optional": False},
                "pts": {"type": "array", "items": {"type": "tuple", "items": {"type": "float"}}},
                "opts": {"type": "dict", "properties": {"k": {"type": "any", "description": "K"}}},
            },
            "required": ["x"],
        },
    }
    d = bfcl_definition(fn)
    assert d.name == "math_hypot"
    assert d.parameters == {
        "type": "object",
        "properties": {
            "x": {"type": "number", "description": "X."},
            "pts": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            "opts": {"type": "object", "properties": {"k": {"description": "K"}}},
        },
        "required": ["x"],
    }
    names = BfclNames()
    assert names.to_tool("a.b") == "a_b" and names.to_bfcl("a_b") == "a.b"
    with pytest.raises(ToolDefinitionError, match=r"'a_b' and 'a\.b' both map to tool name 'a_b'"):
        names.to_tool("a_b")
    with pytest.raises(ToolDefinitionError, match="unknown type 'decimal'"):
        bfcl_schema({"type": "dict", "properties": {"n": {"type": "decimal"}}})
    reg = registry_from_bfcl([fn, {**fn, "name": "math_hypot"}], strict=False)
    assert reg.names == ["math_hypot"] and "both map to" in reg.skipped["math_hypot"]


def test_ground_truth_rule() -> None:
    answer = {"a": [1, 2], "b": ["", "x"], "c": [""], "d": [{"k": ["", 3], "j": [""]}]}
    assert bfcl_ground_truth(answer) == {"a": 1, "b": "x", "d": {"k": 3}}


@pytest.mark.shared
def test_every_bfcl_definition_and_ground_truth_call(shared: Path) -> None:
    bfcl = shared / "data" / "bfcl"
    definitions = calls = 0
    disagreements: list[str] = []
    mutations: Counter[str] = Counter()
    for path in sorted(bfcl.glob("BFCL_v4_*.json")):
        answers_path = bfcl / "possible_answer" / path.name
        answers = (
            {a["id"]: a["ground_truth"] for a in load(answers_path)}
            if (answers_path.is_file())
            else {}
        )
        for q in load(path):
            reg = registry_from_bfcl(q["function"])  # strict: every definition converts
            definitions += len(reg)
            originals = {f["name"]: f for f in q["function"]}
            for call in answers.get(q["id"], []):
                for fname, allowed in call.items():
                    calls += 1
                    tool = reg.get(reg.bfcl_names.sep.join(fname.split(".")))
                    assert reg.bfcl_names.to_bfcl(tool.name) == fname
                    args = bfcl_ground_truth(allowed)
                    expected = object_ok(originals[fname]["parameters"], args)
                    try:
                        tool.validate(args)
                        accepted, message = True, ""
                    except ToolArgumentsError as e:
                        accepted, message = False, str(e)
                    if not accepted:
                        # A rejection names the argument at fault.
                        assert any(names_argument(message, a) for a in args) or (
                            "missing required argument" in message
                        ), message
                    if accepted != expected:
                        disagreements.append(f"{q['id']} {fname} {args}")
                    if not accepted:
                        continue
                    for kind, (bad, arg) in mutate_arguments(
                        tool.definition.parameters, args
                    ).items():
                        with pytest.raises(ToolArgumentsError) as err:
                            tool.validate(bad)
                        assert arg in str(err.value), (kind, str(err.value))
                        mutations[kind] += 1
    assert definitions > 6000 and calls > 3000
    assert disagreements == []
    assert set(mutations) == {
        "wrong_type",
        "missing_required",
        "unknown_argument",
        "enum_violation",
    }
