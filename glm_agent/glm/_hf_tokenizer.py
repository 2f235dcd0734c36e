"""GLM-4's tokenizer as a `tokenizers` / transformers fast tokenizer, and back.

The construction is transformers' `TikTokenConverter` as used by `convert_glm_weights_to_hf`
(the script that made glm-4-9b-chat-hf): byte-level BPE whose vocabulary is the tiktoken ranks,
merges from every split of a token into two ranked halves, the GLM-4 split regex, the special
tokens after the ranks, and a post-processor that prefixes `[gMASK]<sop>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm_agent.exceptions import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "TokenizerJson",
    "build_bpe_tokenizer",
    "checkpoint_files",
    "load_tokenizer_json",
    "save_pretrained",
    "to_transformers",
]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: every byte as a printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


_BYTE_TO_CHAR = _bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def _require_tokenizers() -> None:
    try:
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("tokenizers", "local", "GLM-4's fast tokenizer") from exc


def _byte_level(token: bytes) -> str:
    return "".join([_BYTE_TO_CHAR[b] for b in token])


def _vocab_and_merges(ranks: Mapping[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """TikTokenConverter.extract_vocab_merges_from_model, on ranks already in memory."""
    vocab: dict[str, int] = {}
    ranked: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        vocab[_byte_level(token)] = rank
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            left_rank, right_rank = ranks.get(left), ranks.get(right)
            if left_rank is not None and right_rank is not None:
                ranked.append((rank, left_rank, right_rank, left, right))
    # By the merged token's rank, then (as the converter does) by the halves' ranks.
    ranked.sort(key=lambda m: m[:3])
    return vocab, [(_byte_level(m[3]), _byte_level(m[4])) for m in ranked]


def build_bpe_tokenizer(
    ranks: Mapping[bytes, int], special_tokens: Mapping[str, int], pattern: str
) -> Tokenizer:
    """A `tokenizers.Tokenizer` that encodes exactly like tiktoken over `ranks`.

    Args:
        ranks: tiktoken mergeable ranks.
        special_tokens: Special token text to id; the ids must follow the ranks without gaps.
        pattern: The pre-tokenizer regex.

    Raises:
        ConfigError: The special token ids do not follow the ranks.
        MissingDependencyError: `tokenizers` is not installed.
    """
    _require_tokenizers()
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    vocab, merges = _vocab_and_merges(ranks)
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    ordered = sorted(special_tokens.items(), key=lambda item: item[1])
    expected = list(range(len(vocab), len(vocab) + len(ordered)))
    if [i for _, i in ordered] != expected:
        raise ConfigError(
            f"special token ids must be {expected[:1]}...{expected[-1:]} (right after the "
            f"{len(vocab)} ranks, no gaps) to build a fast tokenizer; got "
            f"{[i for _, i in ordered]}"
        )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, _ in ordered])
    steps: list[Any] = [processors.ByteLevel(trim_offsets=False)]
    if "[gMASK]" in special_tokens and "<sop>" in special_tokens:
        steps.append(
            processors.TemplateProcessing(
                single="[gMASK]:0 <sop>:0 $A:0",
                pair="[gMASK]:0 <sop>:0 $A:0 $B:1",
                special_tokens=[
                    ("[gMASK]", special_tokens["[gMASK]"]),
                    ("<sop>", special_tokens["<sop>"]),
                ],
            )
        )
    tok.post_processor = processors.Sequence(steps)
    return tok


class JsonTokenizerBackend:
    """A checkpoint's `tokenizer.json` (byte-level BPE) behind GLMTokenizer's interface.

    Args:
        json_text: The contents of `tokenizer.json`.
    """

    def __init__(self, json_text: str) -> None:
        from tokenizers import Tokenizer

        self.engine = "tokenizers"
        self._json = json_text
        self._tok = Tokenizer.from_str(json_text)
        self._plain: Tokenizer | None = None
        added = self._tok.get_added_tokens_decoder()
        vocab = self._tok.get_vocab(with_added_tokens=False)
        self.n_vocab: int = max([*vocab.values(), *added.keys()], default=-1) + 1
        table = [b""] * self.n_vocab
        try:
            for text, i in vocab.items():
                table[i] = bytes([_CHAR_TO_BYTE[c] for c in text])
        except KeyError as exc:
            raise ConfigError(f"vocabulary token {exc} is not byte-level BPE") from exc
        for i, token in added.items():
            table[i] = token.content.encode("utf-8")
        self._table = table

    def encode(self, text: str, allow_special: bool) -> list[int]:
        tok = self._tok
        if not allow_special:
            if self._plain is None:
                from tokenizers import Tokenizer

                plain = Tokenizer.from_str(self._json)
                plain.encode_special_tokens = True  # special token text splits like any text
                self._plain = plain
            tok = self._plain
        ids: list[int] = tok.encode(text, add_special_tokens=False).ids
        return ids

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        table, n = self._table, self.n_vocab
        return b"".join([table[i] if 0 <= i < n else b"" for i in ids])

    def token_bytes(self, token_id: int) -> bytes:
        return self._table[token_id] if 0 <= token_id < self.n_vocab else b""

    def tokenizer_json(self) -> str:
        return self._json


@dataclass(frozen=True)
class TokenizerJson:
    """What GLMTokenizer needs from a `tokenizer.json`."""

    text: str
    """The file's contents."""
    special_tokens: dict[str, int]
    """Added tokens marked special."""
    ranks: dict[bytes, int] | None
    """tiktoken ranks that encode exactly like the file, when it is tiktoken's construction."""


def load_tokenizer_json(path: Path, pattern: str) -> TokenizerJson:
    """Read a checkpoint's `tokenizer.json` and check whether tiktoken can run it.

    Args:
        path: The file.
        pattern: The split regex for which tiktoken is known to split like `tokenizers`.

    Raises:
        ConfigError: Not JSON, or not a byte-level BPE tokenizer (GLM-4 and later are).
        MissingDependencyError: `tokenizers` is not installed.
    """
    _require_tokenizers()
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read tokenizer.json ({exc})", path=str(path)) from exc
    model = data.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(data.get("decoder")):
        raise ConfigError(
            f"only byte-level BPE tokenizers are supported (GLM-4, GLM-4-0414, GLM-4.5+); got "
            f"model {model.get('type')!r} with decoder {(data.get('decoder') or {}).get('type')!r}",
            path=str(path),
        )
    special = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    return TokenizerJson(text, special, _tiktoken_ranks(data, pattern))


def _tiktoken_ranks(data: Any, pattern: str) -> dict[bytes, int] | None:
    """The ranks of a tokenizer.json built by TikTokenConverter from them, else None.

    Only then is tiktoken (about 14x faster) certain to give the same ids: same split regex,
    plain byte-level BPE, added tokens that are all special, and exactly the converter's merges.
    """
    model, pre = data["model"], data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if data.get("normalizer") is not None or not model.get("ignore_merges") or not steps:
        return None
    if any(model.get(k) for k in ("dropout", "byte_fallback", "continuing_subword_prefix")):
        return None
    expected = [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
    ]
    if len(steps) != 2 or any(
        {k: step.get(k) for k in want} != want for step, want in zip(steps, expected, strict=True)
    ):
        return None
    added = data.get("added_tokens") or []
    flags = ("normalized", "lstrip", "rstrip", "single_word")
    if any(not t.get("special") or any(t.get(f) for f in flags) for t in added):
        return None
    texts = [t["content"] for t in added]
    if any(a != b and b.startswith(a) for a in texts for b in texts):
        return None  # tiktoken matches specials leftmost-first, tokenizers leftmost-longest
    vocab: dict[str, int] = model["vocab"]
    try:
        ranks = {bytes([_CHAR_TO_BYTE[c] for c in s]): i for s, i in vocab.items()}
    except KeyError:
        return None
    if {t["id"] for t in added} & set(ranks.values()):
        return None
    merges = [m if isinstance(m, list) else m.split(" ", 1) for m in model["merges"]]
    return ranks if _converter_merges(vocab, merges) else None


def _converter_merges(vocab: dict[str, int], merges: list[list[str]]) -> bool:
    """Whether `merges` is exactly what `_vocab_and_merges` builds, without rebuilding it.

    Byte-level strings have one character per byte, so string splits are byte splits. Valid
    merges in strictly increasing (merged, left, right) rank order, as many as there are
    splits of vocabulary tokens into two vocabulary tokens, are that list.
    """
    last = (-1, -1, -1)
    for left, right in merges:
        merged, left_rank, right_rank = vocab.get(left + right), vocab.get(left), vocab.get(right)
        if merged is None or left_rank is None or right_rank is None:
            return False
        key = (merged, left_rank, right_rank)
        if key <= last:
            return False
        last = key
    splits = 0
    for token in vocab:
        for i in range(1, len(token)):
            if token[:i] in vocab and token[i:] in vocab:
                splits += 1
    return splits == len(merges)


def _special_names(special_tokens: Mapping[str, int]) -> list[str]:
    return [t for t, _ in sorted(special_tokens.items(), key=lambda item: item[1])]


def to_transformers(
    tok: Tokenizer, special_tokens: Mapping[str, int], eos_token: str | None
) -> PreTrainedTokenizerFast:
    """Wrap `tok` as glm-4-9b-chat-hf's `PreTrainedTokenizerFast` (eos = pad = `eos_token`).

    Raises:
        MissingDependencyError: transformers is not installed.
    """
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:
        raise MissingDependencyError("transformers", "local", "to_transformers()") from exc
    kwargs: dict[str, Any] = {
        "tokenizer_object": tok,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
        "additional_special_tokens": _special_names(special_tokens),
    }
    if eos_token is not None:
        kwargs.update(eos_token=eos_token, pad_token=eos_token)
    build: Any = PreTrainedTokenizerFast  # its __init__ is untyped
    fast: PreTrainedTokenizerFast = build(**kwargs)
    return fast


def save_pretrained(
    tokenizer_json: str, special_tokens: Mapping[str, int], eos_token: str | None, directory: Path
) -> tuple[Path, ...]:
    """Write the files transformers' `AutoTokenizer.from_pretrained` reads (no remote code)."""
    directory.mkdir(parents=True, exist_ok=True)
    names = _special_names(special_tokens)
    named: dict[str, Any] = {"additional_special_tokens": names}
    if eos_token is not None:
        named.update(eos_token=eos_token, pad_token=eos_token)
    config: dict[str, Any] = {
        "added_tokens_decoder": {
            str(i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for t, i in sorted(special_tokens.items(), key=lambda item: item[1])
        },
        **named,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "left",
        "remove_space": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    files = (
        directory / "tokenizer.json",
        directory / "tokenizer_config.json",
        directory / "special_tokens_map.json",
    )
    files[0].write_text(tokenizer_json, encoding="utf-8")
    files[1].write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files[2].write_text(json.dumps(named, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return files


def checkpoint_files(path: Path) -> tuple[Path, list[int] | None]:
    """The tokenizer file of a checkpoint directory (or `path` itself) and its stop ids.

    Raises:
        ConfigError: No `tokenizer.json` or `tokenizer.model` is found.
    """
    if path.is_file():
        return path, None
    if not path.is_dir():
        raise ConfigError(
            "not a checkpoint directory, tokenizer.json or tokenizer.model", path=str(path)
        )
    for name in ("tokenizer.json", "tokenizer.model"):
        if (path / name).is_file():
            return path / name, _eos_from_configs(path)
    raise ConfigError(
        "no tokenizer in this directory; expected one of: tokenizer.json, tokenizer.model",
        path=str(path),
    )


def _eos_from_configs(directory: Path) -> list[int] | None:
    for name in ("generation_config.json", "config.json"):
        file = directory / name
        if not file.is_file():
            continue
        try:
            data: Any = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read JSON ({exc})", path=str(file)) from exc
        eos = data.get("eos_token_id") if isinstance(data, dict) else None
        if isinstance(eos, int):
            return [eos]
        if isinstance(eos, list) and eos and all(isinstance(i, int) for i in eos):
            return list(eos)
    return None
