"""GLM-4's tokenizer: tiktoken BPE over `tokenizer.model`, or a checkpoint's `tokenizer.json`.

`GLMTokenizer.from_tiktoken_file` reads glm-4-9b-chat's `tokenizer.model` (one `base64-token rank`
a line), adds the 14 special tokens and the GLM-4 pre-tokenizer regex, and encodes with tiktoken.
`GLMTokenizer.from_pretrained` also reads a converted checkpoint's `tokenizer.json`: with tiktoken
when the file is provably transformers' `TikTokenConverter` construction (as `save_pretrained`
writes it), else with the `tokenizers` library. `to_transformers` / `save_pretrained` give the
fast tokenizer glm-4-9b-chat-hf ships.

`IncrementalDecoder` turns streamed ids into text without ever splitting a UTF-8 character.

No torch; tiktoken, `tokenizers` and transformers are imported only where they are used.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from glm_agent.exceptions import ConfigError, MissingDependencyError
from glm_agent.glm._incremental import IncrementalDecoder
from glm_agent.glm._tiktoken_backend import Backend, TiktokenBackend, load_tiktoken_ranks

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "GLM4_PATTERN",
    "GLM4_PROMPT_PREFIX",
    "GLM4_SPECIAL_TOKENS",
    "GLM4_STOP_TOKENS",
    "GLMTokenizer",
    "IncrementalDecoder",
    "load_tiktoken_ranks",
]

GLM4_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""GLM-4's pre-tokenizer regex (tiktoken `pat_str`)."""

_GLM4_SPECIAL_NAMES = (
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
    "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
    "<|begin_of_video|>", "<|end_of_video|>",
)  # fmt: skip
GLM4_SPECIAL_TOKENS: Mapping[str, int] = MappingProxyType(
    {name: 151329 + i for i, name in enumerate(_GLM4_SPECIAL_NAMES)}
)
"""glm-4-9b-chat's 14 special tokens and their ids (after the 151,329 BPE ranks)."""

GLM4_STOP_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|user|>", "<|observation|>")
"""The tokens generation stops on (glm-4-9b-chat's `eos_token_id` list)."""

GLM4_PROMPT_PREFIX: tuple[str, ...] = ("[gMASK]", "<sop>")
"""The special tokens every GLM-4 prompt starts with (once)."""

_EOS_TOKEN = "<|endoftext|>"  # eos and pad of glm-4-9b-chat(-hf)


class GLMTokenizer:
    """GLM-4's tokenizer: encode / decode with special tokens, fast (tiktoken).

    Build one with `from_tiktoken_file` or `from_pretrained`, not with the constructor.
    Instances are immutable and safe to share between threads.

    Args:
        backend: The encoding engine.
        special_tokens: Special token text to id.
        eos_token_ids: Ids that end generation; default: those of `GLM4_STOP_TOKENS` present.
    """

    def __init__(
        self,
        backend: Backend,
        special_tokens: Mapping[str, int],
        *,
        eos_token_ids: Sequence[int] | None = None,
    ) -> None:
        self._backend = backend
        self._special = dict(special_tokens)
        self._special_ids = frozenset(self._special.values())
        if eos_token_ids is None:
            eos_token_ids = [self._special[t] for t in GLM4_STOP_TOKENS if t in self._special]
        self._eos = tuple(eos_token_ids)
        prefix = [self._special.get(t) for t in GLM4_PROMPT_PREFIX]
        self._prefix: list[int] = [i for i in prefix if i is not None]
        if len(self._prefix) != len(GLM4_PROMPT_PREFIX):
            self._prefix = []

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def from_tiktoken_file(
        cls,
        path: str | Path,
        *,
        special_tokens: Mapping[str, int] = GLM4_SPECIAL_TOKENS,
        pattern: str = GLM4_PATTERN,
    ) -> GLMTokenizer:
        """Load a tiktoken BPE file such as glm-4-9b-chat's `tokenizer.model`.

        Loading takes a few tenths of a second; the result is cached per file (path, size,
        modification time), so loading the same file again is free.

        Args:
            path: The `tokenizer.model` file.
            special_tokens: Special tokens to add; default: glm-4-9b-chat's 14.
            pattern: The pre-tokenizer regex; default: GLM-4's.

        Raises:
            ConfigError: The file is malformed or a special id collides with a rank.
        """
        file = Path(path).resolve()
        if not file.is_file():
            raise ConfigError("no such tiktoken BPE file (tokenizer.model)", path=str(path))
        stat = file.stat()
        key = tuple(sorted(special_tokens.items()))
        return _load_tiktoken(str(file), stat.st_size, stat.st_mtime_ns, key, pattern)

    @classmethod
    def from_ranks(
        cls,
        ranks: dict[bytes, int],
        *,
        special_tokens: Mapping[str, int] = GLM4_SPECIAL_TOKENS,
        pattern: str = GLM4_PATTERN,
    ) -> GLMTokenizer:
        """Build a tokenizer from in-memory mergeable ranks (see `load_tiktoken_ranks`).

        Args:
            ranks: Token bytes to rank.
            special_tokens: Special token text to id; ids must not collide with ranks.
            pattern: The pre-tokenizer regex.

        Raises:
            ConfigError: A special token id is also a BPE rank.
        """
        clash = sorted(set(special_tokens.values()) & set(ranks.values()))
        if clash:
            raise ConfigError(
                f"special token ids {clash[:5]} are also BPE ranks; special ids must come "
                f"after the {len(ranks)} ranks"
            )
        return cls(TiktokenBackend(ranks, special_tokens, pattern), special_tokens)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> GLMTokenizer:
        """Load a checkpoint's tokenizer: `tokenizer.json` if present, else `tokenizer.model`.

        A directory's `generation_config.json` (or `config.json`) `eos_token_id` sets
        `eos_token_ids` when present.

        Args:
            path: A checkpoint directory, a `tokenizer.json` file or a `tokenizer.model` file.

        Raises:
            ConfigError: No tokenizer file is found, or it cannot be read.
        """
        from glm_agent.glm._hf_tokenizer import checkpoint_files

        file, eos = checkpoint_files(Path(path))
        if file.suffix == ".json":
            backend, special = _load_tokenizer_json(file)
            return cls(backend, special, eos_token_ids=eos)
        tok = cls.from_tiktoken_file(file)
        return tok if eos is None else cls(tok._backend, tok._special, eos_token_ids=eos)

    # --- encode / decode -------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of token ids in use (BPE ranks plus special tokens): 151,343 for GLM-4."""
        return self._backend.n_vocab

    @property
    def engine(self) -> str:
        """What encodes: `tiktoken`, or `tokenizers` for a tokenizer.json tiktoken can't run."""
        return self._backend.engine

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token text to id (a copy)."""
        return dict(self._special)

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """Ids that end generation: `<|endoftext|>`, `<|user|>`, `<|observation|>` for GLM-4."""
        return self._eos

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Token ids of `text`; nothing is added before or after it.

        Args:
            text: Any text.
            allow_special: Recognise special tokens (`<|user|>`...) anywhere in the text; when
                false their text is encoded as ordinary characters (for untrusted input).
        """
        return self._backend.encode(text, allow_special)

    def encode_prompt(self, prompt: str) -> list[int]:
        """Ids of a rendered prompt, starting with `[gMASK]<sop>` exactly once.

        The prefix is added only when the prompt does not already start with it (rendered
        GLM-4 prompts do), so it is never doubled.
        """
        ids = self._backend.encode(prompt, True)
        if self._prefix and ids[: len(self._prefix)] != self._prefix:
            return self._prefix + ids
        return ids

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Text of `ids`; bytes that are not valid UTF-8 become U+FFFD.

        Args:
            ids: Token ids; ids outside the vocabulary decode to nothing.
            skip_special_tokens: Leave out special tokens.
        """
        if skip_special_tokens:
            ids = [i for i in map(int, ids) if i not in self._special_ids]
        return self._backend.decode_bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The raw bytes of `ids` (special tokens as their text)."""
        return self._backend.decode_bytes(ids)

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes of one token; empty for an id outside the vocabulary."""
        return self._backend.token_bytes(token_id)

    def is_special(self, token_id: int) -> bool:
        """Whether `token_id` is a special token."""
        return token_id in self._special_ids

    def count(self, text: str) -> int:
        """Number of tokens in `text` (special tokens recognised)."""
        return len(self._backend.encode(text, True))

    # --- transformers ----------------------------------------------------------------------

    def to_tokenizers(self) -> Tokenizer:
        """A `tokenizers.Tokenizer` equal to this one (a fresh copy each call).

        Built like glm-4-9b-chat-hf's `tokenizer.json`: byte-level BPE from the ranks, the
        GLM-4 split regex, the special tokens, and a post-processor that prefixes
        `[gMASK]<sop>` when asked to add special tokens.
        """
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError("tokenizers", "local", "to_tokenizers()") from exc
        return Tokenizer.from_str(self._backend.tokenizer_json())

    def to_transformers(self) -> PreTrainedTokenizerFast:
        """A transformers fast tokenizer with the same ids, eos and pad as glm-4-9b-chat-hf.

        Like glm-4-9b-chat-hf's, it prefixes `[gMASK]<sop>` when `add_special_tokens=True`
        (transformers' default); encode rendered prompts with `add_special_tokens=False`.

        Raises:
            MissingDependencyError: transformers is not installed (extra `local`).
        """
        from glm_agent.glm._hf_tokenizer import to_transformers

        return to_transformers(self.to_tokenizers(), self._special, _eos_token_text(self))

    def save_pretrained(self, directory: str | Path) -> tuple[Path, ...]:
        """Write `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`.

        `transformers.AutoTokenizer.from_pretrained(directory)` loads them (no remote code),
        and so does `GLMTokenizer.from_pretrained(directory)`.

        Args:
            directory: Where to write (created if missing).

        Returns:
            The written files.
        """
        from glm_agent.glm._hf_tokenizer import save_pretrained

        return save_pretrained(
            self._backend.tokenizer_json(), self._special, _eos_token_text(self), Path(directory)
        )


def _eos_token_text(tok: GLMTokenizer) -> str | None:
    return _EOS_TOKEN if _EOS_TOKEN in tok._special else None


@functools.lru_cache(maxsize=4)
def _load_tiktoken(
    file: str, size: int, mtime_ns: int, special: tuple[tuple[str, int], ...], pattern: str
) -> GLMTokenizer:
    del size, mtime_ns  # part of the cache key only: a changed file is read again
    return GLMTokenizer.from_ranks(
        load_tiktoken_ranks(file), special_tokens=dict(special), pattern=pattern
    )


_JSON_CACHE: dict[str, tuple[Backend, dict[str, int]]] = {}


def _load_tokenizer_json(file: Path) -> tuple[Backend, dict[str, int]]:
    """Load a tokenizer.json, once per distinct content (checkpoints often share one)."""
    from glm_agent.glm._hf_tokenizer import JsonTokenizerBackend, load_tokenizer_json

    key = hashlib.sha256(file.read_bytes()).hexdigest()
    if key not in _JSON_CACHE:
        loaded = load_tokenizer_json(file, GLM4_PATTERN)
        backend: Backend
        if loaded.ranks is None:
            backend = JsonTokenizerBackend(loaded.text)
        else:
            backend = TiktokenBackend(loaded.ranks, loaded.special_tokens, GLM4_PATTERN)
            backend.json_text = loaded.text  # the checkpoint's own file, not a rebuild
        while len(_JSON_CACHE) >= 4:
            _JSON_CACHE.pop(next(iter(_JSON_CACHE)))
        _JSON_CACHE[key] = (backend, loaded.special_tokens)
    return _JSON_CACHE[key]
