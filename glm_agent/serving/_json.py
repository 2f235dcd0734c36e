"""Reading JSON from clients: `loads_json`, the one parser of request bodies (the routes' JSON
bodies through `JsonRoute`, the webhook and Feishu channels' raw bodies).

Python's `json.loads` turns an escape such as `"\\ud800"` (half of a surrogate pair, alone)
into a `str` that has no UTF-8 form: pydantic lets it through plain `str` fields, and it fails
later wherever the text is written (SQLite, a session store, a log line, a response), as a 500.
Here it is a 400 that says where it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["loads_json"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def loads_json(data: bytes | str) -> Any:
    """`json.loads` that refuses strings which are not Unicode text (lone surrogates).

    Raises:
        json.JSONDecodeError: Not JSON, or a string (or key) holds a lone surrogate; its
            message says which and its `pos` points at it.
    """
    value = json.loads(data)
    bad = _lone_surrogate(value)
    if bad is not None:
        text = data if isinstance(data, str) else data.decode("utf-8", "surrogatepass")
        escape = re.search(rf"\\u{ord(bad):04x}", text, re.IGNORECASE)
        pos = escape.start() if escape else max(text.find(bad), 0)
        raise json.JSONDecodeError(
            f"a string holds a lone surrogate (\\u{ord(bad):04x}), which is not Unicode text",
            text,
            pos,
        )
    return value


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in the strings and keys of decoded JSON (no recursion: any
    depth `json.loads` accepted is fine)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if m := _SURROGATE.search(v):
                return m[0]
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return None
