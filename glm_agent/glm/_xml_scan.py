"""A linear-time reader of one GLM-4.5+ `<tool_call>` block, fed whole or in pieces.

After `<tool_call>` the grammar is

    name ( ws* <arg_key> key </arg_key> ws* <arg_value> value </arg_value> )* ws* </tool_call>

and the rules for reading it intact or not at all are:

- A value ends at the first `</arg_value>` followed (after whitespace) by `<arg_key>` or
  `</tool_call>`. Any other `</arg_value>` is part of the value, so a value that contains the
  text `</arg_value>` is read whole instead of cut short.
- A call is *damaged* when its arguments cannot be recovered intact: a value holding an opening
  tag (`<arg_key>`, `<arg_value>`), a `</arg_value>` inside a value followed by `<tool_call>`
  (a missing `</tool_call>`), a key holding a tag or missing `</arg_key>`, a value never closed.
  A damaged call keeps its name and its raw argument text; it is never run with what could be
  read (see `ParsedCall.raw`). When the grammar breaks (a key or value never closes) the block
  runs to the last `</tool_call>` of the output.
- A `</tool_call>` or an argument tag outside any block after a call, or a later block with an
  empty name or a tag in it, only make sense if a value held `</arg_value></tool_call>`: some
  call ended early, so every call before it is damaged (`has_stray`, `is_debris`). A value
  holding that sequence followed by text that reads as well-formed (say a block naming an
  unknown tool) cannot be told from a call followed by that text: it is read as the latter.
- A block whose name is not a tool is not a call (its text is content); a block without its
  `</tool_call>` is cut off (content too).

Every tag is found with `str.find` through a `Finder` that never searches a character twice
for the same tag, so one output costs O(length) however many `<` it holds. Fed in pieces, the
scanner keeps at most 11 characters (a possible partial tag) between pieces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["GAP_TAGS", "BlockScanner", "Finder", "Outcome", "has_stray", "is_debris", "scan_block"]

CALL, END_CALL = "<tool_call>", "</tool_call>"
KEY, END_KEY, VAL, END_VAL = "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"
_CARRY = len(END_CALL) - 1
_WS = re.compile(r"\s*")

Outcome = Literal["call", "damaged", "invalid", "incomplete"]
"""How a block ended: a call, a damaged call, not a call (unknown name), cut off."""


class Finder:
    """`str.find` over one text for positions that only move forward: each tag is searched
    over each character at most once."""

    __slots__ = ("_at", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._at: dict[str, tuple[int, int]] = {}

    def next(self, tag: str, pos: int) -> int:
        """The first index >= `pos` where `tag` starts, or -1."""
        hit = self._at.get(tag)
        if hit is not None and hit[0] <= pos and (hit[1] == -1 or hit[1] >= pos):
            return hit[1]
        idx = self.text.find(tag, pos)
        self._at[tag] = (pos, idx)
        return idx


def _first(f: Finder, pos: int, tags: tuple[str, ...]) -> tuple[int, str]:
    best, which = -1, ""
    for tag in tags:
        i = f.next(tag, pos)
        if i != -1 and (best == -1 or i < best):
            best, which = i, tag
    return best, which


_NAME_ENDS = (KEY, END_CALL)
GAP_TAGS = (END_CALL, KEY, END_KEY, VAL, END_VAL)
"""Tags that cannot stand outside a block (only inside one)."""
_KEY_ENDS = (END_KEY, KEY, VAL, END_VAL, CALL, END_CALL)
_VALUE_STOPS = (END_VAL, KEY, VAL)


class BlockScanner:
    """Reads one block after its `<tool_call>`; `run` on a whole text or `feed` piece by piece.

    Args:
        names: The tool names a block may call.
        typer: Types argument `key` written as `raw` for tool `name`: `typer(name)(key, raw)`.
    """

    def __init__(self, names: frozenset[str], typer: Callable[[str], Callable[[str, str], Any]]):
        self._names = names
        self._typer = typer
        self.state = "name"
        self.name = ""
        """The tool name, once read (the block is a call or a damaged call)."""
        self.region = ""
        """The text the name was read from, once read (also when it is not a tool's name)."""
        self.name_end = -1
        """Offset (from the block start) just past the name: the arguments' raw text starts."""
        self.args: dict[str, Any] = {}
        self.pairs: list[tuple[str, Any]] = []
        """Arguments confirmed since the caller last emptied this list (streaming)."""
        self.damaged = False
        self.outcome: Outcome | None = None
        self.end = -1
        """Offset (from the block start) just past the block's `</tool_call>`, once known."""
        self.value_start = -1
        """Offset where the value being read starts (a value never closed damages from here)."""
        self.broken_at = -1
        """Offset where the grammar broke (the block then runs to the last `</tool_call>`)."""
        self._parts: list[str] = []
        self._key = ""
        self._ws = ""
        self._base = 0  # block offset of `s[0]` in `run` (streaming: of the carried text)
        self._carry = ""

    # --- streaming ------------------------------------------------------------------------------

    def feed(self, delta: str) -> int | None:
        """Scan the next piece; return the index in `delta` just past the block end, or None."""
        s = self._carry + delta
        j = self.run(s, 0, Finder(s), final=False)
        if self.end != -1:
            return j - len(self._carry)
        self._base += j
        self._carry = s[j:]
        return None

    def name_so_far(self) -> str:
        """The name's text: so far (a possible partial tag included) while it is being read."""
        return "".join(self._parts) + self._carry if self.state == "name" else self.region

    # --- the grammar ----------------------------------------------------------------------------

    def run(self, s: str, i: int, f: Finder, *, final: bool) -> int:
        """Scan `s` from `i`. Returns the index just past the block end when the block ended
        (`outcome` set), else how far it read (what follows may still be a partial tag).

        With `final`, `s` holds the rest of the output: every state resolves, except a broken
        or unterminated block, which `scan_block` resolves (it needs the last `</tool_call>`).
        """
        n = len(s)
        while True:
            st = self.state
            if st == "name":
                e, tag = _first(f, i, _NAME_ENDS)
                if e == -1:
                    j = n if final else max(i, n - _CARRY)
                    self._parts.append(s[i:j])
                    if final:
                        self.outcome = "incomplete"
                    return j
                self._parts.append(s[i:e])
                region = self.region = "".join(self._parts)
                self._parts = []
                name = region.strip()
                if name not in self._names:
                    self.state = "seek_end"
                    i = e
                    continue
                # The arguments' raw text starts right after the name (a damaged call keeps it).
                self.name, self.name_end = name, len(region.rstrip())
                if tag == END_CALL:
                    return self._done(e + len(END_CALL))
                self.state, i = "key", e + len(KEY)
            elif st == "seek_end":
                e = f.next(END_CALL, i)
                if e == -1:
                    if final:
                        self.outcome = "incomplete"
                        return n
                    return max(i, n - _CARRY)
                self.outcome = "invalid"
                return self._finish_at(e + len(END_CALL))
            elif st == "key":
                e, tag = _first(f, i, _KEY_ENDS)
                if e == -1:
                    j = n if final else max(i, n - _CARRY)
                    self._parts.append(s[i:j])
                    if final:
                        return self._break(n)
                    return j
                if tag != END_KEY:
                    return self._break(e) if final else self._swallow(n)
                self._parts.append(s[i:e])
                self._key = "".join(self._parts).strip()
                self._parts = []
                self.state, i = "after_key", e + len(END_KEY)
            elif st == "after_key":
                j = _WS.match(s, i).end()  # type: ignore[union-attr]
                if s.startswith(VAL, j):
                    self.state, i = "value", j + len(VAL)
                    self.value_start = self._base + i
                    continue
                if not final and n - j < len(VAL) and VAL.startswith(s[j:]):
                    return j
                return self._break(j) if final else self._swallow(n)
            elif st == "value":
                c, tag = _first(f, i, _VALUE_STOPS)
                if c == -1:
                    j = n if final else max(i, n - _CARRY)
                    self._parts.append(s[i:j])
                    if final:
                        return self._break(self.value_start - self._base)
                    return j
                if tag != END_VAL:  # an opening tag inside a value: no intact reading
                    self.damaged = True
                    self._parts.append(s[i : c + len(tag)])
                    i = c + len(tag)
                    continue
                self._parts.append(s[i:c])
                self.state, i = "after_value", c + len(END_VAL)
                self._ws = ""
            elif st == "after_value":
                j = _WS.match(s, i).end()  # type: ignore[union-attr]
                self._ws += s[i:j]
                if s.startswith(KEY, j):
                    self._confirm()
                    self.state, i = "key", j + len(KEY)
                    continue
                if s.startswith(END_CALL, j):
                    self._confirm()
                    return self._done(j + len(END_CALL))
                rest = n - j
                if not final and rest < len(END_CALL):
                    frag = s[j:]
                    if KEY.startswith(frag) or END_CALL.startswith(frag):
                        return j
                if final and rest == 0:
                    return self._break(self.value_start - self._base)
                if s.startswith(CALL, j):  # `</arg_value><tool_call>`: a missing `</tool_call>`
                    self.damaged = True
                self._parts.append(END_VAL + self._ws)
                self.state, i = "value", j
            else:  # "swallow": broken while streaming; the whole output decides at the end
                return n

    def _confirm(self) -> None:
        raw = "".join(self._parts)
        self._parts = []
        if self.damaged:
            return
        value = self._typer(self.name)(self._key, raw)
        self.args[self._key] = value
        self.pairs.append((self._key, value))

    def _done(self, j: int) -> int:
        self.outcome = "damaged" if self.damaged else "call"
        return self._finish_at(j)

    def _finish_at(self, j: int) -> int:
        self.state = "done"
        self.end = self._base + j
        return j

    def _break(self, at: int) -> int:
        self.damaged = True
        self.state = "broken"
        self.broken_at = self._base + at
        return at

    def _swallow(self, n: int) -> int:
        self.damaged = True
        self.state = "swallow"
        return n


def scan_block(
    text: str,
    start: int,
    names: frozenset[str],
    typer: Callable[[str], Callable[[str, str], Any]],
    finder: Finder,
) -> BlockScanner:
    """Read the block whose body starts at `text[start]` (just after `<tool_call>`) to its end.

    `scanner.end` is then the index in `text` just past the block (for `call`, `damaged` and
    `invalid`); a broken block runs to the last `</tool_call>` after the break, and is
    `incomplete` when there is none.
    """
    sc = BlockScanner(names, typer)
    sc._base = -start
    sc.run(text, start, finder, final=True)
    if sc.state == "broken":
        # The grammar broke: nothing after this point reads as structure, so the call runs to
        # the output's last `</tool_call>` (one rfind: later blocks cannot close any more).
        k = text.rfind(END_CALL, start + sc.broken_at)
        if k == -1:
            sc.outcome = "incomplete"
        else:
            sc.outcome = "damaged"
            sc.end = k + len(END_CALL)
    elif sc.end != -1:
        sc.end += start
    if sc.name_end != -1:
        sc.name_end += start
    return sc


def is_debris(name_region: str) -> bool:
    """Whether a block's name text (read whole) is no name a model could have meant, so the
    block is the leftover of a value that held markup: empty, or holding a tag."""
    return not name_region.strip() or "<" in name_region


def has_stray(f: Finder, start: int, stop: int) -> bool:
    """Whether `text[start:stop]`, outside any block, holds a tag that belongs inside one."""
    return any(-1 < f.next(tag, start) < stop for tag in GAP_TAGS)
