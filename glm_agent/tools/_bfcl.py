"""Berkeley Function Calling Leaderboard (BFCL) function definitions as a tool registry.

The conversion is the one of `../shared/glm/conformance/README.md` §6: BFCL's type names map to
JSON Schema (`dict` → `object`, `float` → `number`, `tuple` → `array`, `any` → no type), the
Gorilla key `optional` is dropped, everything else is kept; `.` in names becomes `_`, recorded in a
`BfclNames` table so that names map back exactly (two BFCL names that land on one tool name are
refused rather than merged).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

import jsonschema

from glm_agent.exceptions import ToolDefinitionError
from glm_agent.messages import ToolDefinition
from glm_agent.tools._registry import ToolRegistry
from glm_agent.tools._tool import ArgsValidator, Tool, json_schema_validator

__all__ = [
    "BfclNames",
    "BfclRegistry",
    "bfcl_definition",
    "bfcl_ground_truth",
    "bfcl_schema",
    "mutate_arguments",
    "registry_from_bfcl",
    "validation_schema",
]

BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
"""BFCL type names that differ from JSON Schema's."""
JSON_TYPES = {"object", "number", "array", "string", "integer", "boolean", "null"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OMITTED = ""
"""BFCL's marker for "this argument may be left out"."""


def bfcl_schema(schema: dict[str, Any], where: str = "parameters") -> dict[str, Any]:
    """A BFCL parameter schema as JSON Schema (recursively through `properties` and `items`).

    Raises:
        ToolDefinitionError: A type that is neither BFCL's nor JSON Schema's.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "optional":
            continue
        if key == "type":
            if value == "any":
                continue
            t = BFCL_TYPES.get(value, value) if isinstance(value, str) else value
            if not isinstance(t, str) or t not in JSON_TYPES:
                valid = ", ".join(sorted(JSON_TYPES | set(BFCL_TYPES) | {"any"}))
                raise ToolDefinitionError(f"{where}: unknown type {value!r}; valid types: {valid}")
            out[key] = t
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: bfcl_schema(v, f"{where}.{k}") for k, v in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = bfcl_schema(value, f"{where}[]")
        else:
            out[key] = value
    return out


class BfclNames:
    """The reversible map between BFCL function names and tool names.

    Args:
        sep: What `.` becomes in a tool name.
    """

    def __init__(self, sep: str = "_") -> None:
        self.sep = sep
        self.to_bfcl_names: dict[str, str] = {}
        """BFCL name of each tool name given out so far."""

    def to_tool(self, name: str) -> str:
        """The tool name of BFCL function `name`.

        Raises:
            ToolDefinitionError: The result is not a valid tool name, or another BFCL name
                already maps to it.
        """
        tool_name = name.replace(".", self.sep)
        if not _NAME.match(tool_name):
            raise ToolDefinitionError(
                f"{name!r}: tool names allow only [A-Za-z0-9_-], 1 to 64 characters"
            )
        other = self.to_bfcl_names.setdefault(tool_name, name)
        if other != name:
            raise ToolDefinitionError(f"{name!r} and {other!r} both map to tool name {tool_name!r}")
        return tool_name

    def to_bfcl(self, tool_name: str) -> str:
        """The BFCL name a tool name came from."""
        return self.to_bfcl_names[tool_name]


def bfcl_definition(function: dict[str, Any], names: BfclNames | None = None) -> ToolDefinition:
    """The `ToolDefinition` of one BFCL function definition.

    Raises:
        ToolDefinitionError: The definition cannot be converted (the message says why).
    """
    name = function.get("name")
    if not isinstance(name, str):
        raise ToolDefinitionError(f"a BFCL function without a name: {function!r:.80}")
    tool_name = (names or BfclNames()).to_tool(name)
    parameters = bfcl_schema(function.get("parameters") or {"type": "dict", "properties": {}})
    if parameters.get("type") != "object":
        raise ToolDefinitionError(f"{name!r}: parameters must be a dict, got {parameters!r:.80}")
    parameters.setdefault("properties", {})
    return ToolDefinition(
        name=tool_name, description=function.get("description") or "", parameters=parameters
    )


def _accept_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """A validation copy of `schema` where each property also accepts its declared default.

    BFCL functions often declare a default their own schema rejects (`None` for a string,
    `"dontcare"` outside the enum); the function accepts it, so the validator must too.
    """
    props = schema.get("properties")
    if not isinstance(props, dict):
        return schema
    out = {}
    for name, prop in props.items():
        prop = _accept_defaults(prop) if isinstance(prop, dict) else prop
        if isinstance(prop, dict) and "default" in prop:
            check = jsonschema.validators.validator_for(prop, jsonschema.Draft202012Validator)
            if not check(prop).is_valid(prop["default"]):
                prop = {"anyOf": [prop, {"const": prop["default"]}]}
        out[name] = prop
    return {**schema, "properties": out}


@functools.lru_cache(maxsize=8192)
def _validator(name: str, schema_json: str) -> ArgsValidator:
    # The same definition recurs across many BFCL questions; compiling once saves most of the time.
    return json_schema_validator(json.loads(schema_json), name)


def validation_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """The schema BFCL arguments are checked against: unknown arguments refused, declared
    defaults accepted."""
    return {"additionalProperties": False, **_accept_defaults(parameters)}


def _echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


class BfclRegistry(ToolRegistry):
    """A registry of converted BFCL functions; the tools return their arguments."""

    def __init__(self, names: BfclNames) -> None:
        super().__init__()
        self.bfcl_names = names
        """Tool name ↔ BFCL name."""
        self.skipped: dict[str, str] = {}
        """BFCL functions that could not be converted, with the reason."""


def registry_from_bfcl(
    functions: Iterable[dict[str, Any]], *, sep: str = "_", strict: bool = True
) -> BfclRegistry:
    """A registry of BFCL function definitions (the `function` list of a BFCL question).

    Arguments are validated against `validation_schema` of the converted schema: unknown
    arguments refused (BFCL schemas leave `additionalProperties` open), declared defaults accepted.

    Args:
        functions: BFCL function definitions.
        sep: What `.` in a name becomes.
        strict: Raise on the first unconvertible definition (else record it in `skipped`).

    Raises:
        ToolDefinitionError: A definition cannot be converted (when `strict`).
    """
    registry = BfclRegistry(BfclNames(sep))
    for fn in functions:
        try:
            definition = bfcl_definition(fn, registry.bfcl_names)
            checked = validation_schema(definition.parameters)
            validator = _validator(definition.name, json.dumps(checked, sort_keys=True))
            registry.add(Tool(definition, _echo, validator=validator))
        except ToolDefinitionError as e:
            if strict:
                raise
            registry.skipped[str(fn.get("name"))] = str(e)
    return registry


def _pick(allowed: Any) -> tuple[bool, Any]:
    """(present, value): the first allowed value that is not the omission marker."""
    if not isinstance(allowed, list):
        return True, _nested(allowed)
    for value in allowed:
        if value != OMITTED:
            return True, _nested(value)
    return False, None


def _nested(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, allowed in value.items():
            present, v = _pick(allowed)
            if present:
                out[k] = v
        return out
    if isinstance(value, list):
        return [_nested(v) if isinstance(v, dict) else v for v in value]
    return value


def bfcl_ground_truth(answer: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a ground-truth call: per argument, the first allowed value that is not `""`.

    Args:
        answer: `{argument: [allowed values]}` from `possible_answer/`.
    """
    return dict(_nested(answer))


_WRONG = {
    "string": 12345,
    "integer": "not an integer",
    "number": "not a number",
    "boolean": "not a boolean",
    "array": "not an array",
    "object": "not an object",
}
UNKNOWN_ARGUMENT = "unexpected_argument_x"


def mutate_arguments(
    parameters: dict[str, Any], args: dict[str, Any]
) -> dict[str, tuple[dict[str, Any], str]]:
    """Invalid variants of valid arguments, by kind: `{kind: (arguments, argument_name)}`.

    Kinds: `wrong_type`, `missing_required`, `unknown_argument`, `enum_violation`; a kind is left
    out where the schema gives it nothing to break (no typed argument, nothing required...).
    """
    props: dict[str, Any] = parameters.get("properties", {})
    out: dict[str, tuple[dict[str, Any], str]] = {}
    typed = [a for a in args if isinstance(props.get(a, {}).get("type"), str)]
    if typed:
        a = typed[0]
        out["wrong_type"] = ({**args, a: _WRONG[props[a]["type"]]}, a)
    required = [r for r in parameters.get("required", []) if r in args]
    if required:
        a = required[0]
        out["missing_required"] = ({k: v for k, v in args.items() if k != a}, a)
    if UNKNOWN_ARGUMENT not in props:
        out["unknown_argument"] = ({**args, UNKNOWN_ARGUMENT: 1}, UNKNOWN_ARGUMENT)
    enums = [a for a, s in props.items() if isinstance(s, dict) and isinstance(s.get("enum"), list)]
    if enums:
        a = next((e for e in enums if e in args), enums[0])
        out["enum_violation"] = ({**args, a: "__not_one_of_the_enum__"}, a)
    return out
