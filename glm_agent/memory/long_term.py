"""Long-term memory: facts about a customer, saved by a tool and recalled by similarity.

Facts and their embeddings live in the session store's own backend (so `delete_customer` erases
them with the customer's sessions); recall is exact cosine similarity over the customer's facts,
which are few enough (hundreds, not millions) that a matrix product beats an index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from glm_agent.exceptions import UserError
from glm_agent.memory._open import open_store
from glm_agent.memory._session import Fact, StoredFact
from glm_agent.memory._store import FactStore, SessionStore

__all__ = ["Embed", "LongTermMemory"]

Embed = Callable[[list[str]], Any]
"""Embeds texts: `embed(texts)` returns an array-like of shape `[len(texts), d]`."""


def _as_matrix(x: Any, n: int) -> npt.NDArray[np.float32]:
    xb = np.asarray(x, dtype=np.float32)
    if xb.ndim != 2 or xb.shape[0] != n:
        raise UserError(f"embed returned shape {xb.shape}; expected ({n}, d)")
    return xb


def _normalised(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class LongTermMemory:
    """Facts per customer: `remember` stores one, `recall` finds the closest to a query.

    Args:
        store: A `FactStore` (the SQLite, Redis and PostgreSQL session stores are ones), or a
            store URL (opened here and closed by `aclose`).
        embed: `embed(texts) -> array [n, d]`, e.g. the retrieval layer's embedder; it is called in
            a worker thread, so a CPU-heavy model does not block the event loop.
        min_score: Facts less similar than this to the query are not recalled.
    """

    def __init__(self, store: FactStore | str, embed: Embed, *, min_score: float = 0.0) -> None:
        self._owns_store = isinstance(store, str)
        opened = open_store(store) if isinstance(store, str) else store
        if not isinstance(opened, FactStore):
            raise UserError(f"{type(opened).__name__} keeps no long-term facts (not a FactStore)")
        self.store: FactStore = opened
        self.embed = embed
        self.min_score = min_score

    async def _embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return _as_matrix(await asyncio.to_thread(self.embed, texts), len(texts))

    async def remember(self, tenant: str, customer_id: str, fact: str) -> Fact:
        """Store a fact about a customer (an identical fact is stored once); the stored fact."""
        text = fact.strip()
        if not text:
            raise UserError("a fact to remember must not be empty")
        xb = await self._embed([text])
        stored = await self.store.add_fact(tenant, customer_id, text, xb[0].tobytes())
        return Fact(id=stored.id, text=stored.text, score=1.0, created_at=stored.created_at)

    async def recall(self, tenant: str, customer_id: str, query: str, k: int = 5) -> list[Fact]:
        """The `k` facts of the customer most similar to `query`, best first."""
        stored = await self.store.list_facts(tenant, customer_id)
        if not stored or k <= 0:
            return []
        xq = _normalised(await self._embed([query]))  # xq: [1, d]
        xb = _normalised(_stack(stored, xq.shape[1]))  # xb: [n, d]
        D = (xb @ xq[0]).astype(np.float64)  # D: [n]
        I = np.argsort(-D, kind="stable")[:k]  # noqa: E741 (FAISS's name)
        return [
            Fact(
                id=stored[i].id,
                text=stored[i].text,
                score=float(D[i]),
                created_at=stored[i].created_at,
            )
            for i in I
            if D[i] >= self.min_score
        ]

    async def facts(self, tenant: str, customer_id: str) -> list[Fact]:
        """Every fact of the customer, oldest first."""
        return [
            Fact(id=f.id, text=f.text, created_at=f.created_at)
            for f in await self.store.list_facts(tenant, customer_id)
        ]

    async def forget(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        """Delete one fact; True when there was one."""
        return await self.store.delete_fact(tenant, customer_id, fact_id)

    async def aclose(self) -> None:
        """Close the store if this memory opened it from a URL."""
        if self._owns_store and isinstance(self.store, SessionStore):
            await self.store.aclose()


def _stack(facts: list[StoredFact], d: int) -> npt.NDArray[np.float32]:
    rows = [np.frombuffer(f.vector, dtype="<f4") for f in facts]
    bad = sorted({r.shape[0] for r in rows if r.shape[0] != d})
    if bad:
        raise UserError(
            f"stored facts have {bad}-dimensional embeddings but embed returns {d}: the embedder "
            "changed; forget the old facts or use the embedder they were made with"
        )
    return np.stack(rows).astype(np.float32)
