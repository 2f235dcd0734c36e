"""Knowledge-base filters as Milvus boolean expressions, and BM25 terms as Milvus text.

Milvus Lite does not take templated filters (`tenant in {t}`), so values are written into the
expression as JSON literals (quotes and backslashes escaped): a tenant id from an API key cannot
change the expression's meaning.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["encode_terms", "milvus_filter"]


def encode_terms(terms: Iterable[str]) -> str:
    """BM25 terms as one analysable string: each term in lower-case unpadded base32 (letters and
    digits only), so that Milvus' analyzers neither split nor fold it."""
    return " ".join(base64.b32encode(t.encode()).decode().rstrip("=").lower() for t in terms if t)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def milvus_filter(filters: Mapping[str, Any]) -> str:
    """A knowledge-base filter as a Milvus boolean expression.

    `source` and `tenant` are fields; any other key is looked up in the `metadata` JSON field,
    where the chunk's value may be a scalar or a list (any of the wanted values matches). A list
    of wanted values means any of them; None among them matches a chunk without the key.
    """
    clauses = []
    for key, want in filters.items():
        wants = list(want) if isinstance(want, list | tuple | set | frozenset) else [want]
        values = [w for w in wants if w is not None]
        parts = []
        if key in ("source", "tenant"):
            if values:
                parts.append(f"{key} in [{', '.join(_literal(v) for v in values)}]")
            if None in wants:
                parts.append(f"{key} is null")
        else:
            field = f"metadata[{_literal(key)}]"
            parts += [f"{field} == {_literal(v)}" for v in values]
            if values:
                parts.append(f"json_contains_any({field}, [{', '.join(map(_literal, values))}])")
            if None in wants:
                parts.append(f"not exists {field}")
        clauses.append("(" + (" or ".join(parts) or "false") + ")")
    return " and ".join(clauses)
