"""BM25 over Chinese and English text, and reciprocal-rank fusion.

Chinese is cut into words by jieba; English is lower-cased, stripped of stop words and reduced by
a small suffix stemmer (plurals, -ing, -ed, -ly...), so "refunds" matches "refund".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from glm_agent.exceptions import MissingDependencyError

__all__ = ["BM25Index", "convex_fuse", "rrf_fuse", "stem", "tokenize"]

_STOPWORD_TEXT = (
    "a an and are as at be been but by for from has have he her his i if in into is it its me my "
    "no not of on or our she so than that the their them then there these they this to too us was "
    "we were what when which who will with would you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split(" "))
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CJK_STOP = frozenset("的了是在和与及或也都就而之其这那有为以于中上下个对等把被")
_jieba_lock = threading.Lock()


def stem(word: str) -> str:
    """A light English stemmer: common inflection suffixes off, the stem at least 3 letters."""
    for suffix, repl in (
        ("ies", "y"), ("sses", "ss"), ("ing", ""), ("edly", ""), ("ed", ""), ("ly", ""),
        ("es", ""), ("s", ""),
    ):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) + len(repl) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suffix)] + repl
    return word


def _jieba() -> Any:
    try:
        import jieba
    except ImportError as e:
        raise MissingDependencyError("jieba", "faiss", "Chinese BM25") from e
    jieba.setLogLevel(60)  # its dictionary-loading chatter goes to stderr otherwise
    return jieba


def tokenize(text: str) -> list[str]:
    """BM25 terms of `text`: jieba words for Chinese runs, stemmed non-stop words for the rest."""
    out: list[str] = []
    pos = 0
    low = text.lower()
    for m in _CJK_RUN.finditer(low):
        out.extend(stem(w) for w in _WORD.findall(low[pos : m.start()]) if w not in _STOPWORDS)
        with _jieba_lock:  # jieba's lazy dictionary load is not thread-safe
            words = _jieba().lcut(m.group(), HMM=True)
        out.extend(w for w in words if w not in _CJK_STOP)
        pos = m.end()
    out.extend(stem(w) for w in _WORD.findall(low[pos:]) if w not in _STOPWORDS)
    return out


class BM25Index:
    """BM25 (bm25s) over tokenised documents, rebuilt from its documents when they change.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._docs: dict[int, list[str]] = {}
        self._order: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._model: Any = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._docs)

    def set(self, ids: Sequence[int], tokens: Sequence[list[str]]) -> None:
        """Add or replace documents `ids` with their tokens."""
        with self._lock:
            for i, t in zip(ids, tokens, strict=True):
                self._docs[int(i)] = t
            self._model = None

    def delete(self, ids: Sequence[int]) -> None:
        """Remove documents `ids` (absent ones are ignored)."""
        with self._lock:
            for i in ids:
                self._docs.pop(int(i), None)
            self._model = None

    def _build(self) -> Any:
        if self._model is None:
            try:
                import bm25s
            except ImportError as e:
                raise MissingDependencyError("bm25s", "faiss", "BM25 search") from e
            self._order = np.fromiter(self._docs, dtype=np.int64, count=len(self._docs))
            model = bm25s.BM25(k1=self.k1, b=self.b)
            # an empty token list would make bm25s drop the document and shift positions
            model.index([self._docs[int(i)] or ["\x00"] for i in self._order], show_progress=False)
            self._model = model
        return self._model

    def search(
        self, query: str, k: int, *, allowed: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The `k` best documents for `query`: scores `D` and ids `I` (1-D; only scores > 0)."""
        q = tokenize(query)
        with self._lock:
            if not self._docs or not q:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            model = self._build()
            mask = None
            if allowed is not None:
                mask = np.isin(self._order, allowed).astype(np.float32)
            kk = min(k, len(self._order))
            docs, scores = model.retrieve([q], k=kk, show_progress=False, weight_mask=mask)
            order = self._order
        D, pos = scores[0].astype(np.float32), docs[0].astype(np.int64)
        keep = D > 0
        return D[keep], order[pos[keep]]


def rrf_fuse(
    rankings: Sequence[npt.NDArray[np.int64]],
    *,
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Reciprocal-rank fusion: each id scores sum(weight / (k + rank)) over the rankings.

    Args:
        rankings: Ids, best first, one array per retriever (-1 entries are ignored).
        k: The RRF constant (higher flattens the head of each ranking).
        weights: One weight per ranking (default 1 each).

    Returns:
        `D` fused scores and `I` ids, best first.
    """
    w = list(weights) if weights is not None else [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ids, weight in zip(rankings, w, strict=True):
        for rank, i in enumerate(ids.tolist(), start=1):
            if i >= 0:
                scores[i] = scores.get(i, 0.0) + weight / (k + rank)
    items = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return (
        np.array([s for _, s in items], dtype=np.float32),
        np.array([i for i, _ in items], dtype=np.int64),
    )


def convex_fuse(
    results: Sequence[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    *,
    weights: Sequence[float] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Score fusion: each retriever's scores min-max scaled to [0, 1], then a weighted sum.

    Unlike RRF it keeps how far apart scores are, so a weak retriever's near-ties move the
    ranking less. An id a retriever did not return gets 0 from it.

    Args:
        results: `(D, I)` per retriever, best first.
        weights: One weight per retriever (default 1 each).

    Returns:
        `D` fused scores and `I` ids, best first.
    """
    w = list(weights) if weights is not None else [1.0] * len(results)
    scores: dict[int, float] = {}
    for (D, I), weight in zip(results, w, strict=True):  # noqa: E741
        if len(D) == 0:
            continue
        lo, hi = float(np.min(D)), float(np.max(D))
        scaled = (D - lo) / (hi - lo) if hi > lo else np.ones_like(D)
        for i, x in zip(I.tolist(), scaled.tolist(), strict=True):
            if i >= 0:
                scores[i] = scores.get(i, 0.0) + weight * x
    items = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return (
        np.array([s for _, s in items], dtype=np.float32),
        np.array([i for i, _ in items], dtype=np.int64),
    )
