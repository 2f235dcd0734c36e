"""Session stores against real SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from glm_agent.exceptions import SessionConflictError, UserError
from glm_agent.memory import Session, SessionMetadata, SessionStore, Summary, open_store
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolMessage,
    UserMessage,
)

T = TypeVar("T")


def run(url: str, fn: Callable[[SessionStore], Awaitable[T]], **params: str) -> T:
    """Open the store at `url`, run `fn` on it, close it."""
    if params:
        url += ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params.items())

    async def main() -> T:
        async with open_store(url) as store:
            return await fn(store)

    return asyncio.run(main())


def tool_turn(i: int) -> list[Message]:
    call = ToolCall.from_args("order_status", {"order_id": f"A-{i}"}, id=f"call_{i}")
    return [
        UserMessage(content=f"where is order A-{i}?"),
        AssistantMessage(content=None, reasoning="look it up", tool_calls=(call,)),
        ToolMessage(content=f'{{"status": "shipped {i}"}}', tool_call_id=call.id, name=call.name),
        AssistantMessage(content=f"Order A-{i} has shipped. 已发货"),
    ]


def test_append_and_load_round_trip(store_url: str) -> None:
    async def scenario(store: SessionStore) -> tuple[list[int], Session | None, Session | None]:
        meta = SessionMetadata(customer_id="c-1", channel="web", data={"lang": "zh"})
        v1 = await store.append("acme", "s-1", tool_turn(1), metadata=meta)
        v2 = await store.append("acme", "s-1", tool_turn(2))
        other = await store.load("other-tenant", "s-1")
        return [v1, v2], await store.load("acme", "s-1"), other

    versions, session, other = run(store_url, scenario)
    assert versions == [1, 2]
    assert other is None  # sessions are scoped by tenant
    assert session is not None
    assert session.version == 2
    assert session.messages == tool_turn(1) + tool_turn(2)
    assert session.turns == [4, 4]
    assert session.metadata.customer_id == "c-1"
    assert session.metadata.channel == "web"
    assert session.metadata.status == "bot"
    assert session.metadata.data == {"lang": "zh"}
    assert session.created_at <= session.updated_at
    assert session.summary is None


def test_expected_version_conflict(store_url: str) -> None:
    async def scenario(store: SessionStore) -> tuple[SessionConflictError, Session | None]:
        await store.append("acme", "s", [UserMessage(content="a")], expected_version=0)
        await store.append("acme", "s", [UserMessage(content="b")], expected_version=1)
        with pytest.raises(SessionConflictError) as info:
            await store.append("acme", "s", [UserMessage(content="stale")], expected_version=1)
        return info.value, await store.load("acme", "s")

    err, session = run(store_url, scenario)
    assert (err.expected, err.actual, err.session_id) == (1, 2, "s")
    assert "reload" in str(err)
    assert session is not None
    assert [m.content for m in session.messages] == ["a", "b"]


def test_two_workers_never_lose_or_interleave(store_url: str) -> None:
    """Two stores (two workers' connections) append 3-message turns to one session at once."""

    async def worker(name: str, n: int) -> list[int]:
        async with open_store(store_url) as store:
            versions = []
            for i in range(n):
                turn = [UserMessage(content=f"{name}-{i}-{j}") for j in range(3)]
                versions.append(await store.append("acme", "shared", turn))
            return versions

    async def main() -> tuple[list[list[int]], Session | None]:
        done = await asyncio.gather(worker("a", 15), worker("b", 15))
        async with open_store(store_url) as store:
            return list(done), await store.load("acme", "shared")

    (va, vb), session = asyncio.run(main())
    assert sorted(va + vb) == list(range(1, 31))
    assert session is not None and session.version == 30
    contents = [m.content or "" for m in session.messages]
    for v, start in enumerate(range(0, len(contents), 3), start=1):
        turn = contents[start : start + 3]
        name, i = turn[0].split("-")[:2]
        assert turn == [f"{name}-{i}-{j}" for j in range(3)]  # whole, not interleaved
        assert v in (va if name == "a" else vb)  # at the version append returned


def test_optimistic_read_modify_append(store_url: str) -> None:
    """Workers that load, then append with expected_version, retry on conflict and lose nothing."""

    async def worker(store: SessionStore, name: str, n: int) -> int:
        conflicts = 0
        for i in range(n):
            while True:
                session = await store.load("acme", "opt")
                version = session.version if session else 0
                try:
                    turn = [UserMessage(content=f"{name}{i}")]
                    await store.append("acme", "opt", turn, expected_version=version)
                    break
                except SessionConflictError:
                    conflicts += 1
        return conflicts

    async def main() -> Session | None:
        stores = [open_store(store_url) for _ in range(3)]
        try:
            await asyncio.gather(*(worker(s, n, 8) for s, n in zip(stores, "xyz", strict=True)))
            return await stores[0].load("acme", "opt")
        finally:
            for s in stores:
                await s.aclose()

    session = asyncio.run(main())
    assert session is not None and session.version == 24
    assert sorted(m.content or "" for m in session.messages) == sorted(
        f"{n}{i}" for n in "xyz" for i in range(8)
    )


def test_list_metadata_and_delete_customer(store_url: str) -> None:
    async def scenario(store: SessionStore) -> dict[str, object]:
        for sid, customer, channel in [
            ("s1", "c1", "web"),
            ("s2", "c1", "mail"),
            ("s3", "c2", "web"),
        ]:
            meta = SessionMetadata(customer_id=customer, channel=channel)
            await store.append("acme", sid, [UserMessage(content=sid)], metadata=meta)
        await store.append(
            "beta", "s9", [UserMessage(content="x")], metadata=SessionMetadata(customer_id="c1")
        )
        await store.set_metadata("acme", "s2", SessionMetadata(status="handed_off"))
        await store.set_metadata("acme", "empty", SessionMetadata(customer_id="c3"))
        out: dict[str, object] = {
            "all": [i.session_id for i in await store.list_sessions("acme")],
            "c1": sorted(i.session_id for i in await store.list_sessions("acme", customer_id="c1")),
            "handed": [
                i.session_id for i in await store.list_sessions("acme", status="handed_off")
            ],
            "limit": len(await store.list_sessions("acme", limit=2)),
            "s2": await store.load("acme", "s2"),
            "empty": await store.load("acme", "empty"),
            "deleted": await store.delete_customer("acme", "c1"),
            "after": sorted(i.session_id for i in await store.list_sessions("acme")),
            "beta": [i.session_id for i in await store.list_sessions("beta")],
            "del_s3": await store.delete("acme", "s3"),
            "del_again": await store.delete("acme", "s3"),
        }
        return out

    out = run(store_url, scenario)
    assert out["all"] == ["empty", "s2", "s3", "s1"]  # most recently updated first
    assert out["c1"] == ["s1", "s2"]
    assert out["handed"] == ["s2"]
    assert out["limit"] == 2
    s2 = out["s2"]
    assert isinstance(s2, Session)
    # set_metadata changed only the status
    assert (s2.metadata.status, s2.metadata.customer_id, s2.metadata.channel) == (
        "handed_off",
        "c1",
        "mail",
    )
    empty = out["empty"]
    assert isinstance(empty, Session) and empty.version == 0 and empty.messages == []
    assert out["deleted"] == 2
    assert out["after"] == ["empty", "s3"]
    assert out["beta"] == ["s9"]  # another tenant's customer c1 is untouched
    assert (out["del_s3"], out["del_again"]) == (True, False)


def test_summary_is_stored_with_the_session(store_url: str) -> None:
    async def scenario(store: SessionStore) -> tuple[bool, bool, Session | None, Session | None]:
        missing = await store.set_summary("acme", "nope", Summary(text="x", covered=1))
        await store.append("acme", "s", tool_turn(1))
        ok = await store.set_summary(
            "acme", "s", Summary(text="customer asked about A-1", covered=4)
        )
        with_summary = await store.load("acme", "s")
        await store.set_summary("acme", "s", None)
        return missing, ok, with_summary, await store.load("acme", "s")

    missing, ok, with_summary, cleared = run(store_url, scenario)
    assert (missing, ok) == (False, True)
    assert with_summary is not None
    assert with_summary.summary == Summary(text="customer asked about A-1", covered=4)
    assert cleared is not None and cleared.summary is None


def test_sessions_expire(store_url: str) -> None:
    async def scenario(store: SessionStore) -> dict[str, object]:
        await store.append("acme", "old", [UserMessage(content="old")])
        live = await store.load("acme", "old")
        await asyncio.sleep(0.7)
        await store.append("acme", "new", [UserMessage(content="new")])
        out: dict[str, object] = {
            "live": live,
            "gone": await store.load("acme", "old"),
            "listed": [i.session_id for i in await store.list_sessions("acme")],
            "purged": await store.purge_expired(),
            "restart": await store.append("acme", "old", [UserMessage(content="again")]),
        }
        out["reloaded"] = await store.load("acme", "old")
        return out

    out = run(store_url, scenario, ttl="0.5")
    live = out["live"]
    assert isinstance(live, Session) and live.expires_at is not None
    assert live.expires_at == pytest.approx(live.updated_at + 0.5, abs=0.01)
    assert out["gone"] is None
    assert out["listed"] == ["new"]
    # SQL stores delete the expired row; Redis has expired it already and drops its index entry.
    assert out["purged"] in (0, 1)
    assert out["restart"] == 1  # an expired session starts over
    reloaded = out["reloaded"]
    assert isinstance(reloaded, Session)
    assert [m.content for m in reloaded.messages] == ["again"]


def test_sql_purge_deletes_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ttl.db"

    async def scenario(store: SessionStore) -> tuple[int, int]:
        for i in range(3):
            await store.append("acme", f"s{i}", [UserMessage(content="x")])
        await asyncio.sleep(0.25)
        return await store.purge_expired(), await store.purge_expired()

    assert run(url, scenario, ttl="0.2") == (3, 0)


def test_bad_ids_and_urls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"

    async def scenario(store: SessionStore) -> None:
        with pytest.raises(UserError, match="tenant"):
            await store.append("", "s", [])
        with pytest.raises(UserError, match="statuses: bot, handed_off, closed"):
            await store.list_sessions("acme", status="open")  # type: ignore[arg-type]

    run(url, scenario)
    with pytest.raises(UserError, match="schemes: sqlite"):
        open_store("mysql://localhost/db")
    with pytest.raises(UserError, match="ttl"):
        open_store("sqlite:///x.db?ttl=soon")
    with pytest.raises(UserError, match="synchronous"):
        open_store("sqlite:///x.db?synchronous=off")


def test_stored_times_are_recent(store_url: str) -> None:
    before = time.time()
    session = run(
        store_url,
        lambda s: _append_then_load(s),
    )
    assert session is not None
    assert before - 1 <= session.created_at <= time.time() + 1


async def _append_then_load(store: SessionStore) -> Session | None:
    await store.append("acme", "t", [UserMessage(content="x")])
    return await store.load("acme", "t")


def test_ids_with_separators_stay_apart(store_url: str) -> None:
    """Tenants and ids holding `:`, `*` or non-ASCII never collide or confuse index scans."""
    pairs = [("a:s", "x"), ("a", "s:x"), ("a", "x:idx"), ("租户*", "会话?[1]"), ("a:s:x", "idx")]

    async def scenario(store: SessionStore) -> list[list[str]]:
        for tenant, sid in pairs:
            meta = SessionMetadata(customer_id=f"{tenant}|{sid}")
            await store.append(tenant, sid, [UserMessage(content=f"{tenant}/{sid}")], metadata=meta)
        await store.purge_expired()
        out = []
        for tenant, sid in pairs:
            session = await store.load(tenant, sid)
            assert session is not None and session.version == 1
            listed = [i.session_id for i in await store.list_sessions(tenant)]
            out.append([m.content or "" for m in session.messages] + listed)
        return out

    found = run(store_url, scenario)
    by_tenant: dict[str, list[str]] = {}
    for tenant, sid in pairs:
        by_tenant.setdefault(tenant, []).append(sid)
    for (tenant, sid), row in zip(pairs, found, strict=True):
        assert row[0] == f"{tenant}/{sid}"
        assert sorted(row[1:]) == sorted(by_tenant[tenant])


def test_a_failing_append_among_concurrent_ones_fails_alone(store_url: str) -> None:
    """Concurrent appends (one commit group in SQLite) where every other one is stale."""

    async def scenario(store: SessionStore) -> tuple[list[object], Session | None]:
        await store.append("acme", "g", [UserMessage(content="first")])

        async def one(i: int) -> object:
            expected = 1_000 if i % 2 else None  # odd ones can never match
            try:
                return await store.append(
                    "acme", "g", [UserMessage(content=f"m{i}")], expected_version=expected
                )
            except SessionConflictError as e:
                return e

        results = await asyncio.gather(*(one(i) for i in range(20)))
        return list(results), await store.load("acme", "g")

    results, session = run(store_url, scenario)
    ok = [r for r in results if isinstance(r, int)]
    failed = [r for r in results if isinstance(r, SessionConflictError)]
    assert len(ok) == 10 and len(failed) == 10
    assert sorted(ok) == list(range(2, 12))
    assert session is not None and session.version == 11
    assert sorted(m.content or "" for m in session.messages[1:]) == sorted(
        f"m{i}" for i in range(0, 20, 2)
    )


def test_in_memory_sqlite() -> None:
    async def scenario(store: SessionStore) -> tuple[Session | None, int]:
        await store.append("acme", "m", tool_turn(1))
        return await store.load("acme", "m"), len(await store.list_sessions("acme"))

    session, listed = run("sqlite:///:memory:", scenario)
    assert session is not None and session.messages == tool_turn(1) and listed == 1
