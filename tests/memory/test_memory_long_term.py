"""Long-term memory: facts per customer, recalled by similarity, on every backend."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from glm_agent.exceptions import UserError
from glm_agent.memory import Fact, LongTermMemory, SessionMetadata, open_store
from glm_agent.messages import UserMessage

DIM = 256


def hashing_embed(texts: list[str]) -> npt.NDArray[np.float32]:
    """A bag-of-words embedder: each word hashed to a dimension (no model needed, deterministic)."""
    xb = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            xb[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    return xb


FACTS = [
    "prefers delivery on Saturday mornings",
    "is allergic to peanuts",
    "paid with a Visa card ending 4242",
    "lives in Hangzhou near West Lake",
]


def test_remember_and_recall(store_url: str) -> None:
    async def main() -> dict[str, object]:
        memory = LongTermMemory(store_url, hashing_embed)
        try:
            ids = [(await memory.remember("acme", "c1", f)).id for f in FACTS]
            again = await memory.remember("acme", "c1", "  is allergic to peanuts ")
            await memory.remember("acme", "c2", "is allergic to shellfish")
            await memory.remember("other", "c1", "is allergic to cats")
            out: dict[str, object] = {
                "ids": ids,
                "again": again.id,
                "allergy": await memory.recall("acme", "c1", "which food allergy: peanuts?", k=2),
                "card": await memory.recall(
                    "acme", "c1", "what card ending did they pay with", k=1
                ),
                "all": await memory.facts("acme", "c1"),
                "c2": await memory.recall("acme", "c2", "allergic", k=5),
                "none": await memory.recall("acme", "c9", "anything"),
            }
            out["forgot"] = await memory.forget("acme", "c1", ids[0])
            out["after"] = [f.text for f in await memory.facts("acme", "c1")]
            return out
        finally:
            await memory.aclose()

    out = asyncio.run(main())
    ids = out["ids"]
    assert isinstance(ids, list) and len(set(ids)) == 4
    assert out["again"] == ids[1]  # an identical fact is stored once
    allergy = out["allergy"]
    assert isinstance(allergy, list) and len(allergy) == 2
    assert allergy[0].text == "is allergic to peanuts"
    assert allergy[0].score > allergy[1].score
    card = out["card"]
    assert isinstance(card, list) and [f.text for f in card] == [FACTS[2]]
    facts = out["all"]
    assert isinstance(facts, list) and [f.text for f in facts] == FACTS
    c2 = out["c2"]
    # scoped per customer and tenant: c2 sees only its own fact
    assert isinstance(c2, list) and [f.text for f in c2] == ["is allergic to shellfish"]
    assert out["none"] == []
    assert out["forgot"] is True
    assert out["after"] == FACTS[1:]


def test_recall_scores_are_cosine_similarities(tmp_path: Path) -> None:
    async def main() -> list[Fact]:
        async with open_store(f"sqlite:///{tmp_path}/f.db") as store:
            memory = LongTermMemory(store, hashing_embed, min_score=0.3)
            for f in FACTS:
                await memory.remember("acme", "c", f)
            return await memory.recall("acme", "c", FACTS[3], k=4)

    found = asyncio.run(main())
    assert found[0].text == FACTS[3] and found[0].score == pytest.approx(1.0, abs=1e-5)
    xq = hashing_embed([FACTS[3]])[0]
    for f in found[1:]:
        xb = hashing_embed([f.text])[0]
        expected = float(xb @ xq / np.linalg.norm(xb) / np.linalg.norm(xq))
        assert f.score == pytest.approx(expected, abs=1e-5)
        assert f.score >= 0.3


def test_delete_customer_erases_facts_and_sessions(store_url: str) -> None:
    async def main() -> tuple[int, list[Fact], list[Fact]]:
        async with open_store(store_url) as store:
            memory = LongTermMemory(store, hashing_embed)
            await memory.remember("acme", "gone", "likes green tea")
            await memory.remember("acme", "kept", "likes green tea")
            meta = SessionMetadata(customer_id="gone")
            await store.append("acme", "s1", [UserMessage(content="hi")], metadata=meta)
            n = await store.delete_customer("acme", "gone")
            return n, await memory.facts("acme", "gone"), await memory.facts("acme", "kept")

    n, gone, kept = asyncio.run(main())
    assert n == 1
    assert gone == []
    assert [f.text for f in kept] == ["likes green tea"]


def test_changed_embedder_and_bad_input_are_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dim.db"

    async def main() -> None:
        async with open_store(url) as store:
            await LongTermMemory(store, hashing_embed).remember("acme", "c", "a fact")
            small = LongTermMemory(store, lambda texts: np.ones((len(texts), 8), np.float32))
            with pytest.raises(UserError, match="embedder changed"):
                await small.recall("acme", "c", "query")
            with pytest.raises(UserError, match="must not be empty"):
                await small.remember("acme", "c", "   ")
            flat = LongTermMemory(store, lambda texts: np.ones(8, np.float32))
            with pytest.raises(UserError, match="expected"):
                await flat.remember("acme", "c", "x")

    asyncio.run(main())


def test_long_facts_are_stored_once(store_url: str) -> None:
    long_fact = "order history: " + " ".join(f"A-{i} shipped" for i in range(800))  # ~10 kB

    async def main() -> list[Fact]:
        memory = LongTermMemory(store_url, hashing_embed)
        try:
            first = await memory.remember("acme", "c", long_fact)
            second = await memory.remember("acme", "c", long_fact)
            assert first.id == second.id
            return await memory.facts("acme", "c")
        finally:
            await memory.aclose()

    assert [f.text for f in asyncio.run(main())] == [long_fact]
