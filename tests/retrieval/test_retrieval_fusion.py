"""Rank fusion, the BM25 tokeniser, and a reranker plugged into the knowledge base."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from glm_agent.exceptions import UserError
from glm_agent.retrieval import KnowledgeBase, convex_fuse, rrf_fuse, stem, tokenize


def test_rrf_fuse_sums_reciprocal_ranks() -> None:
    D, I = rrf_fuse([np.array([1, 2, 3]), np.array([3, 1, -1])], k=10)  # noqa: E741
    assert I.tolist() == [1, 3, 2]
    np.testing.assert_allclose(D, [1 / 11 + 1 / 12, 1 / 13 + 1 / 11, 1 / 12], rtol=1e-6)
    _, I = rrf_fuse([np.array([1, 2]), np.array([2, 1])], k=10, weights=[0.1, 1.0])  # noqa: E741
    assert I.tolist() == [2, 1]


def test_convex_fuse_scales_scores() -> None:
    dense = (np.array([0.9, 0.89, 0.1], dtype=np.float32), np.array([1, 2, 3]))
    bm25 = (np.array([12.0, 2.0], dtype=np.float32), np.array([2, 3]))
    D, I = convex_fuse([dense, bm25], weights=[1.0, 1.0])  # noqa: E741
    assert I.tolist() == [2, 1, 3]
    assert D[0] == pytest.approx(0.89 / 0.8 - 0.1 / 0.8 + 1.0, rel=1e-5)


def test_tokenize_chinese_and_english() -> None:
    toks = tokenize("Refunds are processed quickly. 退款申请需要七个工作日")
    assert "refund" in toks and "process" in toks and "are" not in toks
    assert "退款" in toks and "工作日" in toks
    assert stem("policies") == "policy" and stem("class") == "class" and stem("is") == "is"


class OverlapReranker:
    """A reranker that prefers passages sharing more words with the query (any scorer fits)."""

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        q = set(query.lower().split())
        return np.array([len(q & set(p.lower().split())) for p in passages], dtype=np.float32)


def test_reranker_reorders_candidates(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test", reranker=OverlapReranker())
    kb.add_documents(
        [
            {"id": "a", "text": "card card card card blocked"},
            {"id": "b", "text": "my card was stolen yesterday evening"},
        ]
    )
    hits = kb.search("my card was stolen yesterday", k=2, mode="bm25")
    assert [h.citation.source for h in hits] == ["b", "a"]
    assert hits[0].score == 5.0
    with pytest.raises(UserError, match="valid: rrf, convex"):
        KnowledgeBase(tmp_path / "kb2", embedder="test", fusion="max")


def test_convex_hybrid_search(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder="test", fusion="convex", dense_weight=0.5)
    kb.add_documents(
        [
            {"id": "cards", "text": "Report a stolen card and we block it at once."},
            {"id": "loans", "text": "Personal loans have fixed rates for five years."},
        ]
    )
    assert kb.search("stolen card", k=1)[0].citation.source == "cards"
