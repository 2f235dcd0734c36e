"""Schema migrations, several processes on one SQLite file, and kill -9 in the middle of appends."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from glm_agent.exceptions import UserError
from glm_agent.memory import PostgresStore, SQLiteStore, open_store
from glm_agent.memory._open import split_store_options
from glm_agent.memory.crash import crash_test
from glm_agent.memory.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from glm_agent.messages import UserMessage


def test_sqlite_migrates_an_old_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"

    async def main() -> tuple[int, int, int, list[str]]:
        old = SQLiteStore(path, migrate_to=1)
        await old.append("acme", "s", [UserMessage(content="before")])
        old_version = await old.schema_version()
        await old.aclose()
        async with SQLiteStore(path) as new:
            await new.append("acme", "s", [UserMessage(content="after")])
            fact = await new.add_fact("acme", "c", "likes tea", b"\0\0\0\0")
            session = await new.load("acme", "s")
            assert session is not None and fact.text == "likes tea"
            return (
                old_version,
                await new.schema_version(),
                session.version,
                [m.content or "" for m in session.messages],
            )

    old_version, version, session_version, contents = asyncio.run(main())
    assert (old_version, version) == (1, len(SQLITE_MIGRATIONS))
    assert (session_version, contents) == (2, ["before", "after"])

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE glm_agent_schema SET version = 99")

    async def too_new() -> None:
        async with SQLiteStore(path) as store:
            await store.load("acme", "s")

    with pytest.raises(UserError, match="schema version 99 is newer"):
        asyncio.run(too_new())


@pytest.mark.postgres
def test_postgres_migrates_an_old_schema(postgres_url: str) -> None:
    conninfo, opts = split_store_options(postgres_url, ("schema",))

    async def main() -> tuple[int, int, list[str]]:
        old = PostgresStore(conninfo, schema=opts["schema"], migrate_to=1)
        await old.append("acme", "s", [UserMessage(content="before")])
        old_version = await old.schema_version()
        await old.aclose()
        # Several workers starting at once: the advisory lock lets one migrate.
        stores = [PostgresStore(conninfo, schema=opts["schema"]) for _ in range(3)]
        versions = await asyncio.gather(*(s.schema_version() for s in stores))
        assert set(versions) == {len(POSTGRES_MIGRATIONS)}
        await stores[0].add_fact("acme", "c", "likes tea", b"\0\0\0\0")
        session = await stores[1].load("acme", "s")
        for s in stores:
            await s.aclose()
        assert session is not None
        return old_version, versions[0], [m.content or "" for m in session.messages]

    assert asyncio.run(main()) == (1, len(POSTGRES_MIGRATIONS), ["before"])


_WORKER = """
import asyncio, sys
from glm_agent.memory import open_store
from glm_agent.messages import UserMessage

async def main(url, name, n):
    async with open_store(url) as store:
        for i in range(n):
            await store.append("acme", "shared", [UserMessage(content=f"{name}-{i}")])

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_sqlite_is_safe_with_several_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/multi.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-c", _WORKER, url]
    procs = [subprocess.Popen([*cmd, name, "30"], env=env) for name in "abc"]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]

    async def load() -> list[str]:
        async with open_store(url) as store:
            session = await store.load("acme", "shared")
            assert session is not None and session.version == 90
            return [m.content or "" for m in session.messages]

    contents = asyncio.run(load())
    for name in "abc":
        # every turn of every process, in each process's own order
        assert [c for c in contents if c.startswith(name)] == [f"{name}-{i}" for i in range(30)]


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_kill_9_loses_no_acknowledged_sqlite_append(tmp_path: Path, synchronous: str) -> None:
    url = f"sqlite:///{tmp_path}/crash.db?synchronous={synchronous}"
    report = crash_test(url, kill_after=150, writers=4)
    assert report.acknowledged >= 150
    assert report.stored >= report.acknowledged
    assert report.lost == 0


@pytest.mark.postgres
def test_kill_9_loses_no_acknowledged_postgres_append(postgres_url: str) -> None:
    report = crash_test(postgres_url, kill_after=150, writers=4)
    assert report.acknowledged >= 150
    assert report.stored >= report.acknowledged
    assert report.lost == 0


def test_store_reopens_after_crash_with_usable_file(tmp_path: Path) -> None:
    """After the kill the SQLite file still takes appends (no stale lock, WAL recovered)."""
    url = f"sqlite:///{tmp_path}/crash.db"
    crash_test(url, kill_after=20, writers=2)

    async def append() -> int:
        async with open_store(url) as store:
            return await store.append("acme", "after", [UserMessage(content="ok")])

    assert asyncio.run(append()) == 1


def test_opening_a_sqlite_file_while_another_writer_holds_its_lock(tmp_path: Path) -> None:
    """Switching to WAL while another connection holds a write lock fails at once (SQLite skips
    its busy handler there, to avoid a deadlock); the store must wait for the lock instead."""
    import threading

    from glm_agent.memory import SQLiteStore
    from glm_agent.messages import UserMessage

    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE other_app (x)")
    other.execute("BEGIN IMMEDIATE")  # a RESERVED lock, held for 0.5 s
    other.execute("INSERT INTO other_app VALUES (1)")
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    store = SQLiteStore(str(path))
    try:
        assert asyncio.run(store.append("t", "s", [UserMessage(content="hi")])) == 1
    finally:
        asyncio.run(store.aclose())
        other.close()
