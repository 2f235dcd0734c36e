"""Streaming text out of token ids: incremental detokenization and stop strings.

Byte-level BPE tokens can end in the middle of a UTF-8 character; decoding them alone gives
U+FFFD. `IncrementalText` decodes a short window of recent tokens and holds text back while it
ends in an incomplete character, so a delta never splits one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["IncrementalText", "StopStrings"]

_REPLACEMENT = "\ufffd"


class IncrementalText:
    """Turn token ids into text deltas, one token at a time.

    Args:
        decode: Decodes a list of ids to text (special tokens skipped as the caller wishes).
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # start of the window decoded for context
        self._read = 0  # ids before this index were already emitted

    def add(self, token_id: int) -> str:
        """Add one token; return the new complete text (may be empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        full_text = self._decode(self._ids[self._prefix :])
        if full_text.endswith(_REPLACEMENT) or len(full_text) <= len(prefix_text):
            return ""  # an incomplete character: wait for the bytes that finish it
        self._prefix, self._read = self._read, len(self._ids)
        return full_text[len(prefix_text) :]

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character decodes as U+FFFD)."""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        full_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return full_text[len(prefix_text) :]


class StopStrings:
    """Cut streamed text at the first stop string, holding back a possible partial match.

    Args:
        stops: The stop strings (empty ones are ignored).
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add text; return what can be emitted now. Sets `stopped` once a stop string appears."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        self._pending += text
        cut = min((i for s in self.stops if (i := self._pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            out, self._pending, self.stopped = self._pending[:cut], "", True
            return out
        hold = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(out) :]
        return out

    def flush(self) -> str:
        """The held-back text at the end of generation (it did not become a stop string)."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out
