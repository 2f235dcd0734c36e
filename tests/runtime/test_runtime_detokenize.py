"""Incremental detokenization with GLM-4's real BPE ranks, and stop strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from glm_agent.runtime import IncrementalText, StopStrings

TOKENIZER = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "glm"
    / "glm-4-9b-chat"
    / ("tokenizer.model")
)
PAT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@pytest.fixture(scope="module")
def encoding() -> object:
    if not TOKENIZER.is_file():
        pytest.skip(f"needs {TOKENIZER}")
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(TOKENIZER))
    return tiktoken.Encoding("glm4", pat_str=PAT, mergeable_ranks=ranks, special_tokens={})


@pytest.mark.shared
@pytest.mark.parametrize(
    "text",
    ["订单 A-1042 在哪里？🤖🚀 ünïcödé ✓", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — 日本語テキスト", "龘靐齉 𠮷野家 🧑‍🤝‍🧑"],
)
def test_deltas_never_split_a_character(encoding: object, text: str) -> None:
    ids = encoding.encode(text)  # type: ignore[attr-defined]

    def decode(part: list[int]) -> str:
        return encoding.decode_bytes(part).decode("utf-8", errors="replace")  # type: ignore[attr-defined]

    # The point of the test: some single tokens here are partial UTF-8 characters.
    assert any("\ufffd" in decode([i]) for i in ids)
    inc = IncrementalText(decode)
    deltas = [inc.add(i) for i in ids] + [inc.flush()]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


def test_stop_strings_hold_back_partial_matches() -> None:
    stop = StopStrings(["<|user|>", "END"])
    assert stop.feed("hello <|us") == "hello "
    assert stop.feed("e") == ""
    assert stop.feed("r|> ignored") == "<|use" or stop.stopped
    assert stop.stopped
    other = StopStrings(["END"])
    assert other.feed("the EN") == "the "
    assert other.feed("D of it") == ""
    assert other.stopped
    tail = StopStrings(["END"])
    assert tail.feed("E") == ""
    assert tail.flush() == "E"
    assert StopStrings([]).feed("anything") == "anything"
