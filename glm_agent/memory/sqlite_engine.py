"""The SQLite connections of a store: a writer thread with group commit, a reader thread,
schema migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from glm_agent.exceptions import UserError
from glm_agent.memory.migrations import SQLITE_MIGRATIONS, too_new

__all__ = ["SQLiteEngine", "retry_while_locked"]

T = TypeVar("T")

_MAX_GROUP = 256  # most writes committed in one transaction


def retry_while_locked(op: Callable[[], Any], timeout: float) -> Any:
    """Run `op`, retrying while SQLite says the database is locked or busy.

    Switching a new database to WAL takes an exclusive lock, and when several connections race
    to do it SQLite can answer SQLITE_BUSY at once, without waiting on the busy timeout.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            return op()
        except sqlite3.OperationalError as e:
            locked = "locked" in str(e) or "busy" in str(e)
            if not locked or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


class SQLiteEngine:
    """Runs functions of a connection on the one thread that owns it.

    Args:
        path: The database file, or `:memory:`.
        synchronous: `full`, `normal` or `extra` (SQLite's `PRAGMA synchronous`).
        busy_timeout: Seconds to wait for another process's write lock.
        migrate_to: Apply migrations up to this schema version only (for migration tests).
    """

    def __init__(
        self,
        path: str,
        synchronous: str = "full",
        busy_timeout: float = 30.0,
        migrate_to: int | None = None,
    ) -> None:
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise UserError(f"unknown synchronous={synchronous!r}; options: full, normal, extra")
        self.path = path
        # One thread owns the connection: sqlite3 objects must stay on one thread, and SQLite
        # serialises writers anyway.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glm-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._reader_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glm-sqlite-r")
        self._reader: sqlite3.Connection | None = None
        self._queue: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any]]] = []
        self._queue_lock = threading.Lock()
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        self._migrate_to = migrate_to

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            retry_while_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"), self._busy_timeout)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._migrate(conn)
            self._conn = conn
        return self._conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = len(SQLITE_MIGRATIONS) if self._migrate_to is None else self._migrate_to
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS glm_agent_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM glm_agent_schema").fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(SQLITE_MIGRATIONS):
                raise too_new(self.path, current, len(SQLITE_MIGRATIONS))
            for stmts in SQLITE_MIGRATIONS[current:target]:
                for stmt in stmts:
                    conn.execute(stmt)
            if row is None:
                conn.execute("INSERT INTO glm_agent_schema VALUES (?)", (max(current, target),))
            else:
                conn.execute("UPDATE glm_agent_schema SET version = ?", (max(current, target),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` for reads, on a read-only connection of its own thread.

        WAL lets it read a committed snapshot while the writer thread waits on an fsync.
        """
        loop = asyncio.get_running_loop()
        if self._conn is None or self.path == ":memory:":
            # The writer migrates the schema first; an in-memory database has one connection.
            await loop.run_in_executor(self._executor, self._connect)
            if self.path == ":memory:":
                return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))

        def call() -> T:
            if self._reader is None:
                self._reader = sqlite3.connect(
                    self.path, timeout=self._busy_timeout, isolation_level=None
                )
                self._reader.execute("PRAGMA query_only=ON")
            return fn(self._reader)

        return await loop.run_in_executor(self._reader_executor, call)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` inside a write transaction; returns once that transaction committed."""
        # Group commit: writes queued while the writer thread waits on an fsync are committed
        # together in the next transaction, each inside its own savepoint (so one failing write
        # rolls back alone), and every one is acknowledged only after the shared COMMIT.
        done: Future[Any] = Future()
        with self._queue_lock:
            self._queue.append((fn, done))
        self._executor.submit(self._flush)
        result: T = await asyncio.wrap_future(done)
        return result

    def _flush(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue[:_MAX_GROUP], self._queue[_MAX_GROUP:]
        if not batch:
            return  # an earlier flush took these writes
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for fn, _ in batch:
                    conn.execute("SAVEPOINT w")
                    try:
                        outcomes.append((True, fn(conn)))
                    except Exception as e:
                        conn.execute("ROLLBACK TO w")
                        outcomes.append((False, e))
                    conn.execute("RELEASE w")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as e:
            for _, done in batch:
                done.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        for (ok, value), (_, done) in zip(outcomes, batch, strict=True):
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

    async def close(self) -> None:
        """Close the connections and stop the threads."""

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        def close_reader() -> None:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, close)
        await loop.run_in_executor(self._reader_executor, close_reader)
        self._executor.shutdown(wait=True)
        self._reader_executor.shutdown(wait=True)
