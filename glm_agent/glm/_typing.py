"""Schema-typed argument values for the XML tool-call formats (GLM-4.5+).

The templates write string values raw and every other value as JSON, so reading a value back
needs the parameter's JSON schema (conformance README §5, "Argument typing").
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["ArgTyper", "admitted_types", "type_value"]

_PY_TO_JSON = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


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


def _string_kind(schema: Any) -> tuple[bool, bool]:
    """(string-only, null admitted) for one parameter schema."""
    types = admitted_types(schema)
    if types is None:
        return False, False
    return types - {"null"} == {"string"}, "null" in types


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


def type_value(raw: str, string_only: bool, nullable: bool) -> Any:
    """Read one `<arg_value>` back: raw for string parameters, else JSON, Python literal, text."""
    if string_only:
        if nullable and raw.strip() == "null":
            return None
        return raw
    s = raw.strip()
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        pass
    try:
        return _json_representable(ast.literal_eval(s))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return s


class ArgTyper:
    """Types the arguments of each tool from its parameters schema (computed once per key)."""

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        props = parameters.get("properties") if isinstance(parameters, Mapping) else None
        self._props: Mapping[str, Any] = props if isinstance(props, Mapping) else {}
        self._kinds: dict[str, tuple[bool, bool]] = {}

    def __call__(self, key: str, raw: str) -> Any:
        """The typed value of argument `key` written as `raw`."""
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _string_kind(self._props.get(key))
        return type_value(raw, *kind)
