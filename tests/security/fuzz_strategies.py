"""Hypothesis strategies for the fuzzing pass (test_sec_fuzz.py): odd JSON, text with lone
surrogates and NUL, valid values with a few nodes swapped for something odd, bodies that are not
JSON at all."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
"""Any code points, lone surrogates included (JSON can carry them as `\\ud800` escapes)."""
HEADER = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
).map(str.strip)
"""What an HTTP header value can hold (latin-1, no control characters, no outer spaces)."""
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
"""JSON values (NaN and Infinity included: Python writes them; many parsers read them)."""


ODD = st.one_of(
    st.sampled_from(["x", 1, -1, 1.5, True, [1], {"x": 1}]).map(copy.deepcopy),
    JSON,
    TEXT,
    st.integers(4001, 70_000).map(lambda n: "x" * n),
    st.integers(50, 400).map(lambda n: json.loads("[" * n + "]" * n)),
)
"""What a field may hold instead of what belongs there: another type, a huge string, a deep
nesting, text with lone surrogates."""


def places(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node of a JSON value."""
    yield at
    if isinstance(value, dict | list):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            yield from places(child, (*at, key))


SPLICE = st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "１２", "\r\n", "%00", "'"])
"""What is spliced into a string: lone surrogates, NUL, a bidi override, full-width digits..."""


@st.composite
def mutated(draw: Any, valid: st.SearchStrategy[Any]) -> Any:
    """A valid value with up to three of its nodes replaced by something odd (or, in strings,
    something odd spliced in): most cases get past the first checks and reach the code behind.
    """
    value = draw(valid)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(places(value))[1:]))
        node = value
        for key in path[:-1]:
            node = node[key]
        old = node[path[-1]]
        if isinstance(old, str) and draw(st.booleans()):
            at = draw(st.integers(0, len(old)))
            node[path[-1]] = old[:at] + draw(SPLICE) + old[at:]
        else:
            node[path[-1]] = draw(ODD)
    return value


FRESH = "<a fresh event id>"
"""Replaced by a new id at each request: a drawn id would repeat and be answered as a
duplicate before the code behind the de-duplication is reached."""


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def fresh(body: bytes) -> bytes:
    return body.replace(FRESH.encode(), uuid.uuid4().hex.encode())


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


BODIES = st.one_of(
    st.binary(max_size=64),
    st.integers(1, 200_000).map(deep),
    st.just(b""),
)
"""Bodies that are not JSON objects at all."""
