"""Deterministic schema-valid values for JSON schemas (what `TestModel` sends as arguments)."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["value_for_schema"]

_FORMATS = {
    "date": "2024-01-15",
    "date-time": "2024-01-15T10:30:00Z",
    "time": "10:30:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "12345678-1234-5678-1234-567812345678",
}


def value_for_schema(
    schema: dict[str, Any], rng: random.Random | None = None, root: dict[str, Any] | None = None
) -> Any:
    """A value that validates against `schema`: all properties filled; the first enum value or
    documented example is used when there is one.

    Args:
        schema: A JSON schema (object, array, string, number, integer, boolean, null, enum,
            const, anyOf / oneOf / allOf, local `$ref`).
        rng: Varies strings and numbers; the same seed gives the same values.
        root: The document `$ref`s resolve against (default: `schema`).
    """
    rng = rng or random.Random(0)
    root = root if root is not None else schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return value_for_schema(target, rng, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return value_for_schema(options[0], rng, root)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return value_for_schema(merged, rng, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {k: value_for_schema(v, rng, root) for k, v in props.items()}
    if kind == "array":
        items = schema.get("items", {})
        if isinstance(items, list):  # tuple form
            return [value_for_schema(s, rng, root) for s in items]
        n = max(1, int(schema.get("minItems", 1)))
        return [value_for_schema(items, rng, root) for _ in range(n)]
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        text = "abcdefghij"[: rng.randint(1, 10)]
        min_len = int(schema.get("minLength", 0))
        if len(text) < min_len:
            text = text + "x" * (min_len - len(text))
        if "maxLength" in schema:
            text = text[: int(schema["maxLength"])]
        return text
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 100))
        value = rng.randint(int(low) + 1, max(int(low) + 1, int(high) - 1))
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None
