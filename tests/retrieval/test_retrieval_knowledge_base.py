"""KnowledgeBase end to end on real small documents: incremental ingest, search, citations."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import pytest

from glm_agent.exceptions import UserError
from glm_agent.retrieval import KnowledgeBase, TestEmbedder, format_context


@pytest.fixture
def work(docs_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the documents (tests change files)."""
    dst = tmp_path / "docs"
    shutil.copytree(docs_dir, dst)
    return dst


def test_ingest_reports_and_incremental_updates(work: Path, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    first = kb.ingest(work)
    assert len(first.added) == 8 and first.updated == first.removed == first.skipped == []
    assert [Path(f.path).name for f in first.failed] == ["broken.pdf"]
    assert "broken.pdf" in first.failed[0].reason
    assert first.chunks_added == kb.stats()["chunks"] > 8

    (work / "hours.txt").write_text("Support is open every day from 8am to 8pm.", encoding="utf-8")
    (work / "prices.csv").unlink()
    (work / "new.md").write_text("# Loyalty\n\nMembers earn two points per dollar.\n")
    second = kb.ingest(work)
    names = lambda xs: sorted(Path(x).name for x in xs)  # noqa: E731
    assert names(second.added) == ["new.md"]
    assert names(second.updated) == ["hours.txt"]
    assert names(second.removed) == ["prices.csv"]
    assert len(second.skipped) == 6
    hits = kb.search("when is support open", k=3)
    assert "every day" in hits[0].text
    assert all("Monday to Friday" not in h.text for h in kb.search("Monday Friday 9am", k=10))
    assert all(not h.citation.source.endswith("prices.csv") for h in kb.search("Pro plan", k=10))
    third = kb.ingest(work)
    assert third.added == third.updated == third.removed == [] and third.chunks_added == 0


def test_search_modes_and_citations(work: Path, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    kb.ingest(work)
    for mode in ("hybrid", "dense", "bm25"):
        hits = kb.search("How long does the warranty last?", k=3, mode=mode)
        assert hits[0].citation.source.endswith("warranty.pdf"), mode
        assert hits[0].citation.page == 1 and hits[0].citation.title == "Warranty Terms"
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    zh = kb.search("退款申请要多久退回？", k=2)
    assert zh[0].citation.heading_path == ("Refund Policy", "退款流程")
    assert zh[0].citation.chunk_id.endswith(f"refund.md#{zh[0].citation.chunk_id[-1]}")
    docx_hit = kb.search("password reset ninety days", k=1)[0]
    assert docx_hit.citation.heading_path == ("Account Security", "Passwords")
    with pytest.raises(UserError, match="valid modes: hybrid, dense, bm25"):
        kb.search("x", mode="fuzzy")  # type: ignore[arg-type]


def test_filters_by_tenant_tags_and_source(work: Path, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    kb.ingest(work / "manuals", tenant="acme", tags=["hardware"])
    kb.ingest(work / "refund.md", tenant="globex", tags=["policy", "billing"])
    q = "warranty refund battery"
    assert {h.metadata["tenant"] for h in kb.search(q, k=10, filters={"tenant": "globex"})} == {
        "globex"
    }
    tagged = kb.search(q, k=10, filters={"tags": ["billing", "nope"]})
    assert tagged and all("billing" in h.metadata["tags"] for h in tagged)
    src = str((work / "manuals" / "warranty.pdf").resolve())
    assert {h.citation.source for h in kb.search(q, k=10, filters={"source": src})} == {src}
    assert kb.search(q, k=10, filters={"tenant": "nobody"}) == []


def test_format_context_numbers_citations_and_marks_data(work: Path, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    kb.ingest(work)
    hits = kb.search("express shipping cost", k=2)
    ctx = format_context(hits)
    assert ctx.startswith("<context>") and ctx.endswith("</context>")
    assert "not instructions" in ctx
    assert "[1] Shipping Guide (" in ctx and "[2] " in ctx
    assert ctx.index(hits[0].text) < ctx.index(hits[1].text)
    assert (
        kb.format_context([])
        == "<context>\nNo passages were found in the knowledge base.\n</context>"
    )


def test_reopen_and_recover_a_lost_index_from_the_cache(work: Path, tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb", embedder="test") as kb:
        kb.ingest(work)
        before = [h.citation.chunk_id for h in kb.search("tracking number email", k=3)]
        stats = kb.stats()
    # a crash after the catalogue committed but before the index was saved: no index file
    (tmp_path / "kb" / "index.faiss").unlink()
    with KnowledgeBase(tmp_path / "kb") as kb:  # embedder taken from the folder
        assert kb.embedder.name == "test:256"
        assert kb._cached.misses == 0 and kb._cached.hits == stats["chunks"]
        assert [h.citation.chunk_id for h in kb.search("tracking number email", k=3)] == before
        assert kb.stats()["vectors"] == stats["chunks"]
    with pytest.raises(UserError, match="built with embedder 'test:256'"):
        KnowledgeBase(tmp_path / "kb", embedder=TestEmbedder(64))


def test_concurrent_searches_during_ingest_and_asearch(work: Path, tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    kb.ingest(work / "manuals")
    errors: list[BaseException] = []
    results: list[int] = []

    def searcher() -> None:
        try:
            for _ in range(30):
                results.append(len(kb.search("warranty battery", k=3)))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    kb.ingest(work)
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 120 and min(results) >= 1
    hits = asyncio.run(kb.asearch("delivery address change", k=1))
    assert hits[0].citation.source.endswith("faq.json")


def test_add_documents_and_delete(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    docs = [
        {"id": "a", "title": "Cards", "text": "Lost cards are blocked at once by phone."},
        {"id": "b", "title": "Loans", "text": "Loan rates are fixed for five years."},
    ]
    assert len(kb.add_documents(docs).added) == 2
    assert kb.add_documents(docs).skipped == ["a", "b"]
    assert kb.search("blocked lost card", k=1)[0].citation.source == "a"
    assert kb.delete(["a"]) == 1
    assert {h.citation.source for h in kb.search("blocked lost card", k=5)} == {"b"}


def test_langchain_retriever(work: Path, tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    kb.ingest(work)
    docs = kb.as_langchain_retriever(k=2).invoke("next day express shipping")
    assert len(docs) == 2
    assert docs[0].metadata["title"] == "Shipping Guide"
    assert docs[0].metadata["chunk_id"].startswith(docs[0].metadata["source"])


class EnglishOnlyEmbedder(TestEmbedder):
    """A TestEmbedder that declares English as its only language (as the bundled MiniLM does)."""

    languages = frozenset({"en"})


def test_hybrid_skips_an_embedder_outside_its_languages(tmp_path: Path) -> None:
    from glm_agent.retrieval.embedders import covers, query_language

    assert query_language("退货政策是什么？") == "zh"
    assert query_language("What is the return policy for 退货?") == "en"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zh.md").write_text("# 退货\n\n收货后三十天内可以退货并全额退款。\n")
    (docs / "en.md").write_text("# Returns\n\nReturns are accepted within 30 days.\n")
    kb = KnowledgeBase(tmp_path / "kb", embedder=EnglishOnlyEmbedder())
    kb.ingest(docs)
    assert not covers(kb.embedder, "怎么退货") and covers(kb.embedder, "how to return")
    zh = "怎么退货退款"
    hybrid = [(h.citation.chunk_id, h.score) for h in kb.search(zh, k=3)]
    bm25 = [(h.citation.chunk_id, h.score) for h in kb.search(zh, k=3, mode="bm25")]
    assert hybrid == bm25
    en = "how are returns accepted"
    assert [h.score for h in kb.search(en, k=2)] != [
        h.score for h in kb.search(en, k=2, mode="bm25")
    ]
