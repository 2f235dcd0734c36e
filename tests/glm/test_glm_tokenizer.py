"""GLM-4's tokenizer against ../shared/glm: conformance ids, transformers parity, streaming."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent.exceptions import ConfigError
from glm_agent.glm.tokenizer import (
    GLM4_SPECIAL_TOKENS,
    GLMTokenizer,
    IncrementalDecoder,
    load_tiktoken_ranks,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TOKENIZER_MODEL = SHARED / "glm" / "glm-4-9b-chat" / "tokenizer.model"
CASES_FILE = SHARED / "glm" / "conformance" / "tokenize_cases.jsonl"
CASES: list[dict[str, Any]] = (
    [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line]
    if CASES_FILE.exists()
    else []
)
README_PROMPT = (
    "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there"
    "<|user|>\nWho are you<|assistant|>"
)
README_IDS = [151331, 151333, 151335, 198, 2610, 525, 264, 10945, 17821, 151336, 198, 9703,
              151337, 198, 13041, 1052, 151336, 198, 15179, 525, 498, 151337]  # fmt: skip
# Chinese, emoji (ZWJ sequences, flags, skin tones), rare CJK and Indic: byte-level BPE splits
# some of these characters across tokens.
STREAM_TEXTS = [
    "今天天气很好，我们去公园散步吧。龘靐齉爩，饕餮魑魅魍魉，鱻麤。",
    "👨‍👩‍👧‍👦 family 🇨🇳🇺🇸 flags 👍🏽 thumbs 🧑‍💻 coder 🫠🪿",
    "𠀀𠀁𪚥 𝕳𝖊𝖑𝖑𝖔 नमस्ते дружба ελληνικά 🎉订单#A1023到哪了？",
]

needs_shared = pytest.mark.skipif(
    not TOKENIZER_MODEL.exists(), reason=f"reference data not found: {TOKENIZER_MODEL}"
)


@pytest.fixture(scope="module")
def tok() -> GLMTokenizer:
    if not TOKENIZER_MODEL.exists():
        pytest.skip(f"reference data not found: {TOKENIZER_MODEL}")
    return GLMTokenizer.from_tiktoken_file(TOKENIZER_MODEL)


@pytest.fixture(scope="module")
def hf_fast(tok: GLMTokenizer) -> Any:
    pytest.importorskip("transformers")
    return tok.to_transformers()


@pytest.fixture(scope="module")
def saved_dir(tok: GLMTokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("glm4-tokenizer")
    tok.save_pretrained(out)
    # Read back by GLMTokenizer.from_pretrained as the checkpoint's stop ids.
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": [151329, 151336]}))
    return out


def _case_id(case: dict[str, Any]) -> str:
    return str(case["id"])


# --- conformance ----------------------------------------------------------------------------


@needs_shared
def test_conformance_corpus_is_present() -> None:
    assert len(CASES) >= 45
    assert {c["category"] for c in CASES} >= {"english", "chinese", "code", "emoji"}


@pytest.mark.shared
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conformance_case(tok: GLMTokenizer, case: dict[str, Any]) -> None:
    assert tok.encode(case["text"]) == case["ids"]
    assert tok.decode(case["ids"]) == case["text"]
    assert tok.count(case["text"]) == len(case["ids"])


@pytest.mark.shared
def test_readme_example_and_tool_name(tok: GLMTokenizer) -> None:
    assert tok.encode(README_PROMPT) == README_IDS
    assert tok.encode("get_weather\n") == [455, 68852, 198]


@pytest.mark.shared
def test_vocabulary_and_special_tokens(tok: GLMTokenizer) -> None:
    assert tok.vocab_size == 151329 + 14 == 151343
    assert tok.special_tokens == dict(GLM4_SPECIAL_TOKENS)
    assert tok.eos_token_ids == (151329, 151336, 151338)
    for text, token_id in GLM4_SPECIAL_TOKENS.items():
        assert tok.encode(f"a{text}b")[1] == token_id
        assert tok.decode([token_id]) == text
        assert tok.is_special(token_id)
    # Look-alikes and GLM-4.5's tags are plain text in this vocabulary.
    for text in ("<|User|>", "<|foo|>", "<think>", "<tool_call>"):
        assert not any(tok.is_special(i) for i in tok.encode(text))


@pytest.mark.shared
def test_special_text_as_plain_text_when_not_allowed(tok: GLMTokenizer) -> None:
    text = "ignore this<|user|>\n[gMASK]<sop>"
    plain = tok.encode(text, allow_special=False)
    assert not any(tok.is_special(i) for i in plain)
    assert tok.decode(plain) == text
    assert 151336 in tok.encode(text)


@pytest.mark.shared
def test_decode_skips_special_and_unknown_ids(tok: GLMTokenizer) -> None:
    ids = tok.encode("<|user|>\nHello<|assistant|>")
    assert tok.decode(ids, skip_special_tokens=True) == "\nHello"
    # Embedding rows past the vocabulary (151343..151551) decode to nothing, never raise.
    assert tok.decode([151500, *ids, 151551]) == tok.decode(ids)


@pytest.mark.shared
def test_encode_prompt_adds_the_prefix_once(tok: GLMTokenizer) -> None:
    prefix = [151331, 151333]
    assert tok.encode_prompt(README_PROMPT) == README_IDS
    body = README_PROMPT.removeprefix("[gMASK]<sop>")
    assert tok.encode_prompt(body) == README_IDS
    assert tok.encode_prompt("") == prefix
    for case in CASES:
        ids = tok.encode_prompt(case["text"])
        assert ids[:2] == prefix
        assert ids[2:4] != prefix  # never a second [gMASK]<sop>


@pytest.mark.shared
def test_loading_is_cached_per_file(tok: GLMTokenizer) -> None:
    assert GLMTokenizer.from_tiktoken_file(TOKENIZER_MODEL) is tok
    assert GLMTokenizer.from_pretrained(TOKENIZER_MODEL) is tok


# --- streaming --------------------------------------------------------------------------------


def _stream(tok: GLMTokenizer, ids: list[int], **kwargs: bool) -> tuple[list[str], str]:
    dec = IncrementalDecoder(tok, **kwargs)
    return [dec.add(i) for i in ids], dec.flush()


@pytest.mark.shared
@pytest.mark.parametrize("text", STREAM_TEXTS)
def test_incremental_decoder_never_splits_a_character(tok: GLMTokenizer, text: str) -> None:
    ids = tok.encode(text)
    split = [i for i in ids if not _is_utf8(tok.token_bytes(i))]
    assert split, "the text must contain tokens that split a character"
    pieces, rest = _stream(tok, ids)
    assert "".join(pieces) + rest == tok.decode(ids) == text
    assert rest == ""
    assert not any("\ufffd" in p for p in pieces)
    emitted = b""
    for k, piece in enumerate(pieces, start=1):
        emitted += piece.encode("utf-8")
        so_far = tok.decode_bytes(ids[:k])
        # Everything is emitted except the bytes of at most one unfinished character.
        assert so_far.startswith(emitted)
        assert len(so_far) - len(emitted) <= 3


@pytest.mark.shared
def test_incremental_decoder_skips_special_tokens(tok: GLMTokenizer) -> None:
    ids = tok.encode("<|assistant|>\n你好👋<|user|>")
    pieces, rest = _stream(tok, ids, skip_special_tokens=True)
    assert "".join(pieces) + rest == tok.decode(ids, skip_special_tokens=True) == "\n你好👋"


@pytest.mark.shared
@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=151551), max_size=24))
def test_incremental_decoder_matches_decode_on_any_ids(tok: GLMTokenizer, ids: list[int]) -> None:
    pieces, rest = _stream(tok, ids)
    assert "".join(pieces) + rest == tok.decode(ids)


def _byte_tokenizer() -> GLMTokenizer:
    ranks = {bytes([b]): b for b in range(256)}
    ranks.update({"你".encode()[:2]: 256, "好".encode(): 257})
    return GLMTokenizer.from_ranks(ranks, special_tokens={"<|endoftext|>": 258})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=258), max_size=20))
def test_incremental_decoder_on_raw_bytes(ids: list[int]) -> None:
    # Invalid UTF-8 (stray continuation bytes, truncated sequences, overlongs) must stream to
    # exactly what decoding the whole list gives, U+FFFD included.
    tok = _byte_tokenizer()
    pieces, rest = _stream(tok, ids)
    assert "".join(pieces) + rest == tok.decode(ids)


def test_incremental_decoder_holds_a_split_character() -> None:
    tok = _byte_tokenizer()
    dec = IncrementalDecoder(tok)
    head = "你".encode()
    assert dec.add(256) == ""  # the first two bytes of 你
    assert dec.add(head[2]) == "你"
    assert dec.add(ord("a")) == "a"
    assert dec.add(0xE4) == ""
    assert dec.flush() == "\ufffd"  # a character cut off for good


# --- transformers -----------------------------------------------------------------------------


@pytest.mark.shared
def test_to_transformers_matches_on_conformance(tok: GLMTokenizer, hf_fast: Any) -> None:
    assert hf_fast.eos_token == hf_fast.pad_token == "<|endoftext|>"
    assert hf_fast.pad_token_id == 151329
    assert hf_fast.padding_side == "left"
    assert len(hf_fast) == tok.vocab_size
    for text, token_id in GLM4_SPECIAL_TOKENS.items():
        assert hf_fast.convert_tokens_to_ids(text) == token_id
    for case in CASES:
        ids = hf_fast(case["text"], add_special_tokens=False)["input_ids"]
        assert ids == tok.encode(case["text"]) == case["ids"], case["id"]
        assert hf_fast.decode(case["ids"]) == case["text"]
    # As glm-4-9b-chat-hf: transformers' default add_special_tokens=True prefixes [gMASK]<sop>.
    assert hf_fast("Hello")["input_ids"] == [151331, 151333, *tok.encode("Hello")]


@pytest.mark.shared
def test_save_pretrained_round_trips_through_auto_tokenizer(
    tok: GLMTokenizer, saved_dir: Path
) -> None:
    transformers = pytest.importorskip("transformers")
    auto = transformers.AutoTokenizer.from_pretrained(saved_dir)
    assert auto.eos_token_id == auto.pad_token_id == 151329
    for case in CASES:
        assert auto(case["text"], add_special_tokens=False)["input_ids"] == case["ids"]
        assert auto.decode(case["ids"]) == case["text"]


@pytest.fixture(scope="module")
def json_tokenizers(saved_dir: Path) -> tuple[GLMTokenizer, GLMTokenizer]:
    fast = GLMTokenizer.from_pretrained(saved_dir)
    # A tokenizer.json that is not provably TikTokenConverter's runs on `tokenizers`.
    text = (saved_dir / "tokenizer.json").read_text(encoding="utf-8")
    first_two, swapped = '"merges":[["Ġ","Ġ"],["Ġ","ĠĠĠ"]', '"merges":[["Ġ","ĠĠĠ"],["Ġ","Ġ"]'
    assert first_two in text
    odd = saved_dir.parent / "odd-tokenizer.json"
    odd.write_text(text.replace(first_two, swapped, 1), encoding="utf-8")
    return fast, GLMTokenizer.from_pretrained(odd)


@pytest.mark.shared
def test_from_pretrained_reads_tokenizer_json(
    tok: GLMTokenizer, json_tokenizers: tuple[GLMTokenizer, GLMTokenizer]
) -> None:
    fast, slow = json_tokenizers
    assert (fast.engine, slow.engine) == ("tiktoken", "tokenizers")
    assert fast.eos_token_ids == (151329, 151336)  # from the directory's generation_config
    assert slow.eos_token_ids == tok.eos_token_ids
    assert fast.to_tokenizers().encode("Hi", add_special_tokens=False).ids == tok.encode("Hi")
    text = "<|user|>不要<|assistant|>"
    for loaded in json_tokenizers:
        assert loaded.vocab_size == tok.vocab_size
        assert loaded.special_tokens == tok.special_tokens
        for case in CASES:
            assert loaded.encode(case["text"]) == case["ids"], case["id"]
            assert loaded.decode(case["ids"]) == case["text"]
        assert loaded.encode(text, allow_special=False) == tok.encode(text, allow_special=False)
        ids = loaded.encode(STREAM_TEXTS[1])
        pieces, rest = _stream(loaded, [151500, *ids])
        assert "".join(pieces) + rest == STREAM_TEXTS[1]
        assert loaded.decode([151500, -1, *ids], skip_special_tokens=True) == STREAM_TEXTS[1]


def test_bpe_construction_equals_transformers_converter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The vocab and merges that the fast tokenizer is built from are TikTokenConverter's,
    # checked on the first ranks of GLM-4's file (or a synthetic table without ../shared).
    converter = pytest.importorskip("transformers.convert_slow_tokenizer")
    from glm_agent.glm._hf_tokenizer import _vocab_and_merges

    if TOKENIZER_MODEL.exists():
        ranks = dict(list(load_tiktoken_ranks(TOKENIZER_MODEL).items())[:4000])
    else:
        ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"abc": 257, b"bc": 258}
    small = tmp_path / "small.tiktoken"
    small.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no stale cache keyed by path
    want = converter.TikTokenConverter(str(small)).extract_vocab_merges_from_model(str(small))
    assert _vocab_and_merges(ranks) == (want[0], [tuple(m) for m in want[1]])


# --- errors ----------------------------------------------------------------------------------


def test_missing_tokenizer_lists_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tokenizer\.json, tokenizer\.model"):
        GLMTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="no such tiktoken BPE file"):
        GLMTokenizer.from_tiktoken_file(tmp_path / "nope.model")


def test_malformed_tiktoken_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.model"
    bad.write_text("IQ== 0\nnot-base64!! x\n")
    with pytest.raises(ConfigError, match=r"tokenizer\.model:2"):
        GLMTokenizer.from_pretrained(tmp_path)


def test_special_ids_must_not_collide_with_ranks() -> None:
    ranks = {bytes([b]): b for b in range(256)}
    with pytest.raises(ConfigError, match="also BPE ranks"):
        GLMTokenizer.from_ranks(ranks, special_tokens={"<|endoftext|>": 7})


def test_non_byte_level_tokenizer_json_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers")
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps({"model": {"type": "Unigram"}, "decoder": {"type": "Metaspace"}}))
    with pytest.raises(ConfigError, match="only byte-level BPE"):
        GLMTokenizer.from_pretrained(file)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
