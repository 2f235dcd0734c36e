"""A backend is six small primitives: the `SessionStore` base does the checks and the JSON.

`DictStore` below is a whole backend in a few lines (the way an httpx transport is one method);
the same scenarios then run on it and on SQLite, so the shared layer, not each backend, is what
validates ids, serialises turns, builds sessions and deletes a customer with their facts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from glm_agent.exceptions import SessionConflictError, UserError
from glm_agent.memory import (
    FactStore,
    LongTermMemory,
    SessionMetadata,
    SessionRecord,
    SessionStore,
    SQLiteStore,
    StoredFact,
    Summary,
)
from glm_agent.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage


class DictStore(SessionStore, FactStore):
    """Sessions and facts in dicts: only the primitives, nothing else."""

    scheme = "dict"

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], SessionRecord] = {}
        self.turns: dict[tuple[str, str], list[str]] = {}
        self.facts: dict[tuple[str, str], list[StoredFact]] = {}
        self.written: list[str | None] = []

    async def write(
        self,
        tenant: str,
        session_id: str,
        turn: str | None,
        expected_version: int | None,
        metadata: SessionMetadata | None,
    ) -> int:
        key, t = (tenant, session_id), time.time()
        row = self.rows.get(key) or SessionRecord(
            tenant, session_id, 0, None, None, "bot", {}, t, t, None
        )
        if expected_version is not None and row.version != expected_version:
            raise SessionConflictError(
                tenant, session_id, expected=expected_version, actual=row.version
            )
        if metadata is not None:
            m = row.info().metadata.merged(metadata)
            row = dataclasses.replace(
                row, customer_id=m.customer_id, channel=m.channel, status=m.status, data=m.data
            )
        if turn is not None:
            self.turns.setdefault(key, []).append(turn)
            row = dataclasses.replace(row, version=row.version + 1)
        self.written.append(turn)
        self.rows[key] = dataclasses.replace(row, updated_at=t)
        return self.rows[key].version

    async def read(self, tenant: str, session_id: str) -> tuple[SessionRecord, list[str]] | None:
        row = self.rows.get((tenant, session_id))
        return None if row is None else (row, list(self.turns.get((tenant, session_id), [])))

    async def query(
        self, tenant: str, customer_id: str | None, status: str | None, limit: int | None
    ) -> list[SessionRecord]:
        rows = [
            r
            for (t, _), r in self.rows.items()
            if t == tenant and customer_id in (None, r.customer_id) and status in (None, r.status)
        ]
        rows.sort(key=lambda r: (-r.updated_at, r.session_id))
        return rows if limit is None else rows[:limit]

    async def remove(self, tenant: str, session_id: str) -> bool:
        self.turns.pop((tenant, session_id), None)
        return self.rows.pop((tenant, session_id), None) is not None

    async def write_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        row = self.rows.get((tenant, session_id))
        if row is None:
            return False
        self.rows[(tenant, session_id)] = dataclasses.replace(
            row,
            summary=None if summary is None else summary.text,
            summary_covered=None if summary is None else summary.covered,
        )
        return True

    async def purge(self) -> int:
        return 0

    async def aclose(self) -> None:
        pass

    async def insert_fact(self, tenant: str, customer_id: str, fact: StoredFact) -> StoredFact:
        facts = self.facts.setdefault((tenant, customer_id), [])
        same = next((f for f in facts if f.text == fact.text), None)
        if same is None:
            facts.append(fact)
        return same or fact

    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        return list(self.facts.get((tenant, customer_id), []))

    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        facts = self.facts.get((tenant, customer_id), [])
        kept = [f for f in facts if f.id != fact_id]
        self.facts[(tenant, customer_id)] = kept
        return len(kept) < len(facts)

    async def delete_facts(self, tenant: str, customer_id: str) -> int:
        return len(self.facts.pop((tenant, customer_id), []))


@pytest.fixture(params=["dict", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SessionStore:
    return DictStore() if request.param == "dict" else SQLiteStore(tmp_path / "s.db")


def test_the_same_contract_on_six_primitives(store: SessionStore) -> None:
    call = ToolCall.from_args("lookup", {"order_id": "A-1"})
    turn = [
        UserMessage(content="where is A-1?"),
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(content="shipped", tool_call_id=call.id, name="lookup"),
        AssistantMessage(content="It has shipped."),
    ]

    async def scenario() -> None:
        assert await store.append("acme", "s1", turn, expected_version=0) == 1
        with pytest.raises(SessionConflictError):
            await store.append("acme", "s1", turn[:1], expected_version=0)
        await store.set_metadata("acme", "s1", SessionMetadata(customer_id="c9", channel="web"))
        assert await store.append("acme", "s1", [UserMessage(content="thanks")]) == 2
        assert await store.set_summary("acme", "s1", Summary(text="A-1 shipped", covered=4))
        session = await store.load("acme", "s1")
        assert session is not None
        assert session.messages == [*turn, UserMessage(content="thanks")]
        assert session.turns == [4, 1] and session.version == 2
        assert session.metadata.customer_id == "c9" and session.metadata.channel == "web"
        assert session.summary == Summary(text="A-1 shipped", covered=4)
        assert await store.load("other", "s1") is None  # scoped by tenant
        await store.append("acme", "s2", turn[:1], metadata=SessionMetadata(customer_id="c9"))
        await store.append("acme", "s3", turn[:1], metadata=SessionMetadata(status="closed"))
        assert {i.session_id for i in await store.list_sessions("acme", customer_id="c9")} == {
            "s1",
            "s2",
        }
        assert [i.session_id for i in await store.list_sessions("acme", status="closed")] == ["s3"]
        with pytest.raises(UserError, match="unknown session status"):
            await store.list_sessions("acme", status="lost")  # type: ignore[arg-type]
        with pytest.raises(UserError, match="session_id must be a non-empty string"):
            await store.append("acme", "", turn[:1])
        with pytest.raises(UserError, match="control characters"):
            await store.set_metadata("acme", "bad\nid", SessionMetadata())
        assert isinstance(store, FactStore)
        memory = LongTermMemory(store, lambda texts: [[1.0, float(len(t))] for t in texts])
        await memory.remember("acme", "c9", "prefers email")
        assert await store.delete_customer("acme", "c9") == 2
        assert await store.list_facts("acme", "c9") == []
        assert [i.session_id for i in await store.list_sessions("acme")] == ["s3"]
        await store.aclose()

    asyncio.run(scenario())


def test_a_backend_sees_only_checked_input_and_stored_text() -> None:
    store = DictStore()

    async def scenario() -> Any:
        with pytest.raises(UserError):
            await store.append("acme", "x" * 300, [UserMessage(content="hi")])
        await store.append("acme", "s", [UserMessage(content="你好")])
        return store.written

    # Nothing reached the backend for the bad id; the good turn arrived as compact JSON text.
    assert asyncio.run(scenario()) == ['[{"role":"user","content":"你好"}]']
