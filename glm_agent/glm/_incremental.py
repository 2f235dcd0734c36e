"""Streamed token ids to text, never ending inside a UTF-8 character."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glm_agent.glm.tokenizer import GLMTokenizer

__all__ = ["IncrementalDecoder"]


class IncrementalDecoder:
    """Streamed token ids to text that never ends inside a UTF-8 character.

    Keeps only the bytes of an unfinished character between calls, so each `add` costs O(1)
    amortised. The concatenation of every `add` result and `flush()` equals
    `tokenizer.decode(all_ids)`.

    Args:
        tokenizer: The tokenizer whose ids are streamed.
        skip_special_tokens: Leave special tokens out of the text.
    """

    def __init__(self, tokenizer: GLMTokenizer, *, skip_special_tokens: bool = False) -> None:
        self._token_bytes = tokenizer.token_bytes
        self._is_special = tokenizer.is_special
        self._skip_special = skip_special_tokens
        self._pending = b""

    def add(self, token_id: int) -> str:
        """Add one token; return the text it completes (often empty for a split character)."""
        token_id = int(token_id)  # numpy / torch scalars hash unlike ints
        if self._skip_special and self._is_special(token_id):
            return ""
        data = self._pending + self._token_bytes(token_id)
        cut = _complete_prefix_len(data)
        self._pending = data[cut:]
        return data[:cut].decode("utf-8", errors="replace") if cut else ""

    def add_many(self, token_ids: Sequence[int]) -> str:
        """Add several tokens; return the text they complete."""
        return "".join(self.add(i) for i in token_ids)

    def flush(self) -> str:
        """Return what is held back (an unfinished character decodes as U+FFFD) and reset."""
        text = self._pending.decode("utf-8", errors="replace")
        self._pending = b""
        return text


def _complete_prefix_len(data: bytes) -> int:
    """Length of `data` without a trailing, still unfinished UTF-8 character.

    The cut is always just before a lead byte, where a whole-text decoder would also start a
    new character, so decoding the parts separately gives the same text as decoding it whole.
    """
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte & 0xC0 != 0x80:  # the last byte that is not a continuation byte
            if 0xC0 <= byte < 0xE0:
                need = 2
            elif 0xE0 <= byte < 0xF0:
                need = 3
            elif 0xF0 <= byte < 0xF8:
                need = 4
            else:
                need = 1
            return n - back if back < need else n
    return n
