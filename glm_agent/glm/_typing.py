"""Schema-typed argument values for the XML tool-call formats (GLM-4.5+), kept to valid JSON.

The templates write string values raw and every other value as JSON, so reading a value back
needs the parameter's JSON schema (conformance README §5, "Argument typing"). Every value read
back is JSON that round-trips: finite numbers only (`NaN`, `Infinity`, `1e999` are not JSON
numbers) and strings of valid Unicode (no lone surrogates, so the arguments encode as UTF-8).
A value that decodes to neither is kept as its text. Where the schema admits an array or an
object but no string, a value the model wrote as a JSON string holding that array or object
(double-encoded, seen in real GLM-4.6 output) is decoded once more.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ArgTyper",
    "admitted_types",
    "clean_text",
    "coerce_to_schema",
    "is_clean_json",
    "json_type",
    "strict_json",
    "type_value",
]

_PY_TO_JSON = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTAINERS = frozenset(("array", "object"))


def admitted_types(schema: Any) -> frozenset[str] | None:
    """JSON types a schema admits (`None`: any type, e.g. an untyped `{}`)."""
    if not isinstance(schema, Mapping):
        return None
    t = schema.get("type")
    if isinstance(t, str):
        return frozenset((t,))
    if isinstance(t, list):
        return frozenset(x for x in t if isinstance(x, str))
    branches = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(branches, list):
        out: set[str] = set()
        for b in branches:
            sub = admitted_types(b)
            if sub is None:
                return None
            out |= sub
        return frozenset(out)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        kinds: set[str] = set()
        for v in enum:
            kinds.add(
                "array"
                if isinstance(v, list)
                else "object"
                if isinstance(v, dict)
                else _PY_TO_JSON.get(type(v), "string")
            )
        return frozenset(kinds)
    return None


def clean_text(text: str) -> str:
    """`text` with lone surrogates (not encodable as UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def is_clean_json(value: Any) -> bool:
    """Whether `value` is JSON data that encodes as valid UTF-8 JSON: finite numbers, string
    keys, no lone surrogates (checked without recursion, so any depth is fine)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return False
        elif isinstance(v, bool) or v is None or isinstance(v, int):
            continue
        elif isinstance(v, float):
            if not math.isfinite(v):
                return False
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str) or _SURROGATE.search(k):
                    return False
                stack.append(item)
        else:
            return False
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def strict_json(text: str) -> Any:
    """`json.loads` of standard JSON only; raises `ValueError` for `NaN` / `Infinity`,
    numbers that overflow to infinity, lone surrogate escapes and nesting too deep."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not is_clean_json(value):
        raise ValueError("not finite, valid-Unicode JSON")
    return value


def _json_representable(value: Any) -> Any:
    """`value` with tuples as lists; raises `ValueError` when it is not JSON data."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_representable(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("non-string key")
        return {k: _json_representable(v) for k, v in value.items()}
    raise ValueError(f"not JSON data: {type(value).__name__}")


def json_type(value: Any) -> str:
    """The JSON type name of decoded JSON data (`integer` for ints, `number` for floats)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return _PY_TO_JSON.get(type(value), "string")


def _fits(value: Any, types: frozenset[str]) -> bool:
    kind = json_type(value)
    return kind in types or (kind == "integer" and "number" in types)


def type_value(
    raw: str, string_only: bool, nullable: bool, containers: frozenset[str] = frozenset()
) -> Any:
    """Read one `<arg_value>` back: raw for string parameters, else JSON, Python literal, text.

    Args:
        raw: The text between `<arg_value>` and `</arg_value>`.
        string_only: The schema admits strings (and maybe null) only: the raw text is the value.
        nullable: The schema also admits null (`null` then reads as None).
        containers: `array` / `object` when the schema admits them and no string: a JSON string
            holding such a value is decoded once more.
    """
    if string_only:
        if nullable and raw.strip() == "null":
            return None
        return raw
    s = raw.strip()
    value: Any
    try:
        value = strict_json(s)
    except ValueError:
        try:
            value = _json_representable(ast.literal_eval(s))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return s
        if not is_clean_json(value):
            return s
    if containers and isinstance(value, str):
        value = _undouble(value, containers)
    return value


def _undouble(value: str, containers: frozenset[str]) -> Any:
    """A double-encoded array or object decoded, when it is one of `containers`."""
    try:
        inner = strict_json(value.strip())
    except ValueError:
        return value
    return inner if json_type(inner) in containers else value


def coerce_to_schema(value: Any, schema: Any) -> Any:
    """`value` as the type its schema wants, when it arrived as a string that encodes it.

    For servers that typed arguments wrongly: `"3"` for an integer, `"true"` for a boolean,
    `"[1, 2]"` for an array. Only a string whose schema admits no string is decoded, and only
    into a type the schema admits; everything else is returned as it is.
    """
    if not isinstance(value, str):
        return value
    types = admitted_types(schema)
    if types is None or "string" in types:
        return value
    try:
        decoded = strict_json(value.strip())
    except ValueError:
        return value
    return decoded if _fits(decoded, types) else value


def _kind(schema: Any) -> tuple[bool, bool, frozenset[str]]:
    """(string-only, null admitted, containers to undouble) for one parameter schema."""
    types = admitted_types(schema)
    if types is None:
        return False, False, frozenset()
    containers = types & _CONTAINERS if "string" not in types else frozenset()
    return types - {"null"} == {"string"}, "null" in types, frozenset(containers)


class ArgTyper:
    """Types the arguments of each tool from its parameters schema (computed once per key)."""

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        props = parameters.get("properties") if isinstance(parameters, Mapping) else None
        self._props: Mapping[str, Any] = props if isinstance(props, Mapping) else {}
        self._kinds: dict[str, tuple[bool, bool, frozenset[str]]] = {}

    def _kind(self, key: str) -> tuple[bool, bool, frozenset[str]]:
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _kind(self._props.get(key))
        return kind

    def __call__(self, key: str, raw: str) -> Any:
        """The typed value of argument `key` written as `raw`."""
        return type_value(raw, *self._kind(key))

    def undouble(self, key: str, value: Any) -> Any:
        """A JSON-decoded value (glm4 calls): a double-encoded array / object decoded once more
        where the schema of `key` admits it and no string."""
        containers = self._kind(key)[2]
        if containers and isinstance(value, str):
            return _undouble(value, containers)
        return value
