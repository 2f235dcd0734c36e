"""JSON schema clean-up: what the model sees should be small and self-contained."""

from __future__ import annotations

from typing import Any

__all__ = ["clean_schema"]


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline `$defs` references (when not recursive) and drop pydantic's generated titles.

    Small models follow a flat schema better than one full of `$ref`s; recursive models keep
    their `$defs`.
    """
    defs: dict[str, Any] = schema.get("$defs", {})
    recursive: set[str] = set()

    def resolve(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref.split("/")[-1]
                if key in stack:
                    recursive.add(key)
                    return node
                target = resolve(defs[key], (*stack, key))
                extra = {k: v for k, v in node.items() if k != "$ref"}
                return {**target, **resolve(extra, stack)}
            out = {}
            for k, v in node.items():
                if k == "$defs":
                    continue
                if k == "title" and isinstance(v, str):
                    continue
                if k == "properties" and isinstance(v, dict):
                    out[k] = {pk: resolve(pv, stack) for pk, pv in v.items()}
                else:
                    out[k] = resolve(v, stack)
            return out
        if isinstance(node, list):
            return [resolve(x, stack) for x in node]
        return node

    result: dict[str, Any] = resolve(schema, ())
    if recursive:
        result["$defs"] = {k: resolve(defs[k], (k,)) for k in sorted(recursive)}
    result.setdefault("type", "object")
    result.setdefault("properties", {})
    return result
