"""Loaders for every file type, the folder walk, and Chinese / English chunking."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent.retrieval import (
    DocumentLoadError,
    Section,
    chunk_sections,
    estimate_tokens,
    iter_files,
    load_file,
    split_sentences,
)


def test_markdown_sections_keep_heading_paths(docs_dir: Path) -> None:
    title, sections = load_file(docs_dir / "refund.md")
    assert title == "Refund Policy"
    paths = {s.heading_path for s in sections}
    assert ("Refund Policy", "Eligibility") in paths
    assert ("Refund Policy", "退款流程") in paths
    zh = next(s for s in sections if s.heading_path[-1] == "退款流程")
    assert "三十天" in zh.text and "# not a heading" in zh.text


def test_html_drops_scripts_and_tracks_headings(docs_dir: Path) -> None:
    title, sections = load_file(docs_dir / "shipping.html")
    assert title == "Shipping Guide"
    text = " ".join(s.text for s in sections)
    assert "do not index me" not in text and "color" not in text
    express = next(s for s in sections if "next day" in s.text)
    assert express.heading_path == ("Shipping", "Express")


def test_pdf_pages_and_docx_headings(docs_dir: Path) -> None:
    title, sections = load_file(docs_dir / "manuals" / "warranty.pdf")
    assert title == "Warranty Terms"
    assert [s.page for s in sections] == [1, 2]
    assert "one year" in sections[1].text
    title, sections = load_file(docs_dir / "manuals" / "security.docx")
    assert title == "Account Security"
    pw = next(s for s in sections if "ninety days" in s.text)
    assert pw.heading_path == ("Account Security", "Passwords")
    assert any("Enterprise | 500" in s.text for s in sections)


def test_records_csv_json_jsonl(docs_dir: Path) -> None:
    _, rows = load_file(docs_dir / "prices.csv")
    assert [r.text for r in rows] == [
        "product: Basic plan\nprice: 10\ncurrency: USD",
        "product: Pro plan\nprice: 30\ncurrency: USD",
    ]
    _, items = load_file(docs_dir / "faq.json")
    assert len(items) == 2 and "answer: We ship to 40 countries." in items[1].text
    _, lines = load_file(docs_dir / "tickets.jsonl")
    assert "Battery drains" in lines[1].text


def test_unreadable_and_unsupported_files_raise_load_error(docs_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"broken\.pdf"):
        load_file(docs_dir / "broken.pdf")
    (tmp_path / "x.xyz").write_text("hi")
    with pytest.raises(DocumentLoadError, match=r"supported: .*\.docx"):
        load_file(tmp_path / "x.xyz")


def test_iter_files_include_exclude(docs_dir: Path, tmp_path: Path) -> None:
    names = [p.relative_to(docs_dir).as_posix() for p in iter_files(docs_dir)]
    assert "manuals/warranty.pdf" in names and names == sorted(names)
    only = [p.name for p in iter_files(docs_dir, include=["*.md", "manuals/*"])]
    assert sorted(only) == ["refund.md", "security.docx", "warranty.pdf"]
    ex = [p.name for p in iter_files(docs_dir, exclude=["manuals/*", "*.pdf"])]
    assert "warranty.pdf" not in ex and "broken.pdf" not in ex and "refund.md" in ex


def test_split_sentences_chinese_and_english() -> None:
    text = (
        "退款需要七天。请保留收据！可以吗？可以；谢谢。Refunds take a week. Keep the receipt! OK?"
    )
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert parts[:5] == ["退款需要七天。", "请保留收据！", "可以吗？", "可以；", "谢谢。"]
    assert [p.strip() for p in parts[5:]] == ["Refunds take a week.", "Keep the receipt!", "OK?"]


def test_estimate_tokens() -> None:
    assert estimate_tokens("退款政策") == 4
    assert estimate_tokens("refund policy here") == 4  # ceil(3 * 1.3)
    assert estimate_tokens("") == 0


def test_chunks_respect_size_overlap_and_headings() -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(40)]
    sections = [
        Section(" ".join(sentences[:30]), heading_path=("A",)),
        Section(" ".join(sentences[30:]), heading_path=("B",)),
    ]
    chunks = chunk_sections(sections, source="s", title="T", chunk_size=40, overlap=12)
    assert all(estimate_tokens(c.text) <= 40 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:  # a chunk never mixes two headings
        nums = [int(w) for w in c.text.replace(".", "").split() if w.isdigit()]
        assert all(n < 30 for n in nums) or all(n >= 30 for n in nums)
        assert c.heading_path == (("A",) if nums[0] < 30 else ("B",))
    a = [c for c in chunks if c.heading_path == ("A",)]
    # overlap: each chunk after the first starts with the previous chunk's last sentence
    for prev, nxt in itertools.pairwise(a):
        assert nxt.text.split(".")[0] + "." in prev.text
        assert not prev.text.endswith(nxt.text)  # but progress is made


def test_chinese_chunks_end_at_sentence_marks() -> None:
    text = "".join(f"第{i}条规定客户必须在购买后保留收据以便退款。" for i in range(30))
    chunks = chunk_sections([Section(text)], source="zh", title="规定", chunk_size=60, overlap=0)
    assert len(chunks) > 3
    assert all(c.text.endswith("。") for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_custom_token_counter_is_used() -> None:
    words = " ".join(["word"] * 100)
    chunks = chunk_sections(
        [Section(words)], source="s", title="", chunk_size=10, overlap=0, count_tokens=len
    )
    assert all(len(c.text) <= 10 for c in chunks)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abc 退款。！？.!? \n", min_size=0, max_size=80), min_size=1, max_size=6
    ),
    st.integers(min_value=8, max_value=40),
)
def test_chunks_cover_every_word(texts: list[str], size: int) -> None:
    chunks = chunk_sections(
        [Section(t) for t in texts], source="s", title="", chunk_size=size, overlap=size // 4
    )
    joined = " ".join(c.text for c in chunks)
    for t in texts:
        for word in t.split():
            for piece in split_sentences(word):
                assert piece.strip() in joined.replace(" ", "") or piece.strip() in joined
