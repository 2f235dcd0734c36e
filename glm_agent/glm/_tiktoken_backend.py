"""The tiktoken engine behind `GLMTokenizer`: BPE ranks from `tokenizer.model`, encode / decode."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from glm_agent.exceptions import ConfigError

__all__ = ["Backend", "TiktokenBackend", "load_tiktoken_ranks"]


class Backend(Protocol):
    """What GLMTokenizer needs from an encoding engine."""

    n_vocab: int
    engine: str

    def encode(self, text: str, allow_special: bool) -> list[int]: ...

    def decode_bytes(self, ids: Sequence[int]) -> bytes: ...

    def token_bytes(self, token_id: int) -> bytes: ...

    def tokenizer_json(self) -> str: ...


def load_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    """Read a tiktoken BPE file: one `base64-token rank` pair a line.

    Args:
        path: The file, e.g. glm-4-9b-chat's `tokenizer.model`.

    Returns:
        The mergeable ranks, token bytes to rank.

    Raises:
        ConfigError: A line that is not `base64 integer`, or a rank given twice.
    """
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                token_b64, rank_text = line.split()
                token, rank = base64.b64decode(token_b64, validate=True), int(rank_text)
            except ValueError as exc:
                raise ConfigError(
                    f"expected 'base64-token rank', got {line[:60]!r} ({exc})",
                    path=str(path),
                    line=lineno,
                ) from exc
            ranks[token] = rank
    if len(set(ranks.values())) != len(ranks):
        raise ConfigError("two tokens share one rank; not a tiktoken BPE file", path=str(path))
    return ranks


class TiktokenBackend:
    """tiktoken over mergeable ranks: the fast path for encode, decode and streaming."""

    def __init__(
        self, ranks: dict[bytes, int], special_tokens: Mapping[str, int], pattern: str
    ) -> None:
        import tiktoken

        self.ranks = ranks
        self.special_tokens = dict(special_tokens)
        self.pattern = pattern
        self.encoding = tiktoken.Encoding(
            "glm4", pat_str=pattern, mergeable_ranks=ranks, special_tokens=self.special_tokens
        )
        self.n_vocab: int = self.encoding.n_vocab
        self.engine = "tiktoken"
        self.json_text: str | None = None

    def encode(self, text: str, allow_special: bool) -> list[int]:
        if allow_special:
            return self.encoding.encode(text, allowed_special="all")
        return self.encoding.encode_ordinary(text)

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        try:
            return self.encoding.decode_bytes(ids)
        except (KeyError, OverflowError, TypeError):
            # Ids past the vocabulary (GLM-4's embedding has 151,552 rows for 151,343 tokens)
            # decode to nothing, as in transformers, rather than failing a whole stream.
            return b"".join([self.token_bytes(int(i)) for i in ids])

    def token_bytes(self, token_id: int) -> bytes:
        try:
            return self.encoding.decode_single_token_bytes(token_id)
        except (KeyError, OverflowError):
            return b""

    def tokenizer_json(self) -> str:
        from glm_agent.glm._hf_tokenizer import build_bpe_tokenizer

        if self.json_text is None:  # built once: about 2 s
            tok = build_bpe_tokenizer(self.ranks, self.special_tokens, self.pattern)
            self.json_text = tok.to_str()
        return self.json_text
