"""The embedded default store: one SQLite file in WAL mode, safe with several processes.

Writes run in `BEGIN IMMEDIATE` transactions, so writers of all processes are serialised by
SQLite's write lock and a turn is stored whole or not at all. Within a process, writes that arrive
while the previous commit is syncing are committed together (group commit, each in its own
savepoint), which turns one fsync per append into one per group. `synchronous=FULL` (the default)
makes a returned append survive a crash of the process and of the machine; `synchronous=NORMAL`
(`?synchronous=normal`) still survives a killed process but may lose the last turns on power loss.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from glm_agent.exceptions import SessionConflictError
from glm_agent.memory._session import (
    SessionMetadata,
    StoredFact,
    Summary,
    dump_data,
    expiry,
    metadata_from_row,
    now,
)
from glm_agent.memory._sql import FACT_COLUMNS, Sql
from glm_agent.memory._store import FactStore, SessionRecord, SessionStore
from glm_agent.memory.sqlite_engine import SQLiteEngine

__all__ = ["SQLiteStore"]

_SQL = Sql("?")


class SQLiteStore(SessionStore, FactStore):
    """Sessions in one SQLite file (`sqlite:///path/to/file.db`; `sqlite:///:memory:` for tests).

    Args:
        path: The database file (created with its folder if missing).
        ttl: Seconds a session lives after its last write (None: forever).
        synchronous: `full` (durable on power loss) or `normal` (durable on a killed process).
        busy_timeout: Seconds to wait for another process's write lock.
        migrate_to: Apply migrations up to this schema version only (for migration tests).
    """

    scheme = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        ttl: float | None = None,
        synchronous: str = "full",
        busy_timeout: float = 30.0,
        migrate_to: int | None = None,
    ) -> None:
        self.path = str(path)
        self.ttl = ttl
        self._db = SQLiteEngine(self.path, synchronous, busy_timeout, migrate_to)

    async def schema_version(self) -> int:
        """The database's schema version."""
        row = await self._db.run(
            lambda c: c.execute("SELECT version FROM glm_agent_schema").fetchone()
        )
        return int(row[0])

    @staticmethod
    def _delete(conn: sqlite3.Connection, tenant: str, sid: str) -> bool:
        conn.execute(_SQL.delete_turns, (tenant, sid))
        conn.execute(_SQL.delete_media, (tenant, sid))
        return conn.execute(_SQL.delete_session, (tenant, sid)).rowcount > 0

    def _upsert(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        sid: str,
        meta: SessionMetadata | None,
        t: float,
    ) -> int:
        """Create the session if missing (or expired), apply `meta`; the current version."""
        row = conn.execute(
            "SELECT version, expires_at, customer_id, channel, status, data FROM sessions "
            "WHERE tenant = ? AND session_id = ?",
            (tenant, sid),
        ).fetchone()
        if row is not None and row[1] is not None and row[1] <= t:
            self._delete(conn, tenant, sid)
            row = None
        if row is None:
            m = SessionMetadata().merged(meta)
            conn.execute(
                "INSERT INTO sessions (tenant, session_id, version, customer_id, channel, status, "
                "data, created_at, updated_at, expires_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
                (tenant, sid, m.customer_id, m.channel, m.status, dump_data(m.data), t, t,
                 expiry(self.ttl, t)),
            )  # fmt: skip
            return 0
        if meta is not None:
            m = metadata_from_row(row[2], row[3], row[4], row[5]).merged(meta)
            conn.execute(
                "UPDATE sessions SET customer_id = ?, channel = ?, status = ?, data = ? "
                "WHERE tenant = ? AND session_id = ?",
                (m.customer_id, m.channel, m.status, dump_data(m.data), tenant, sid),
            )
        return int(row[0])

    # --- the store's primitives -------------------------------------------------------------

    async def write(
        self,
        tenant: str,
        session_id: str,
        turn: str | None,
        expected_version: int | None,
        metadata: SessionMetadata | None,
    ) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            t = now()
            version = self._upsert(conn, tenant, session_id, metadata, t)
            if expected_version is not None and version != expected_version:
                raise SessionConflictError(
                    tenant, session_id, expected=expected_version, actual=version
                )
            if turn is not None:
                version += 1
                conn.execute(_SQL.insert_turn, (tenant, session_id, version, turn, t))
            conn.execute(_SQL.bump_version, (version, t, expiry(self.ttl, t), tenant, session_id))
            return version

        return await self._db.write(tx)

    async def read(self, tenant: str, session_id: str) -> tuple[SessionRecord, list[str]] | None:
        def read(conn: sqlite3.Connection) -> tuple[SessionRecord, list[str]] | None:
            # One read transaction, so the row and the turns are one snapshot.
            conn.execute("BEGIN")
            try:
                row = conn.execute(_SQL.read_session, (tenant, session_id, now())).fetchone()
                if row is None:
                    return None
                turns = conn.execute(_SQL.read_turns, (tenant, session_id, row[2])).fetchall()
            finally:
                conn.execute("COMMIT")
            return SessionRecord.from_row(row), [t[0] for t in turns]

        return await self._db.run(read)

    async def query(
        self, tenant: str, customer_id: str | None, status: str | None, limit: int | None
    ) -> list[SessionRecord]:
        sql, args = _SQL.query(tenant, customer_id, status, limit, now())
        rows = await self._db.run(lambda c: c.execute(sql, args).fetchall())
        return [SessionRecord.from_row(r) for r in rows]

    async def remove(self, tenant: str, session_id: str) -> bool:
        return await self._db.write(lambda c: self._delete(c, tenant, session_id))

    async def write_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        text = None if summary is None else summary.text
        covered = None if summary is None else summary.covered
        args = (text, covered, tenant, session_id, now())
        return await self._db.write(lambda c: c.execute(_SQL.write_summary, args).rowcount > 0)

    async def purge(self) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT tenant, session_id FROM sessions WHERE expires_at <= ?", (now(),)
            ).fetchall()
            for tenant, sid in rows:
                self._delete(conn, tenant, sid)
            return len(rows)

        return await self._db.write(tx)

    async def write_media(
        self, tenant: str, session_id: str, media_id: str, mime: str, data: bytes
    ) -> None:
        args = (tenant, session_id, media_id, mime, data, now())
        await self._db.write(lambda c: c.execute(_SQL.insert_media, args))

    async def read_media(
        self, tenant: str, session_id: str, media_id: str
    ) -> tuple[str, bytes] | None:
        args = (tenant, session_id, media_id, now())
        row = await self._db.run(lambda c: c.execute(_SQL.read_media, args).fetchone())
        return None if row is None else (str(row[0]), bytes(row[1]))

    # --- long-term facts --------------------------------------------------------------------

    async def insert_fact(self, tenant: str, customer_id: str, fact: StoredFact) -> StoredFact:
        def tx(conn: sqlite3.Connection) -> StoredFact:
            row = conn.execute(
                f"SELECT {FACT_COLUMNS} FROM facts "
                "WHERE tenant = ? AND customer_id = ? AND text = ?",
                (tenant, customer_id, fact.text),
            ).fetchone()
            if row is not None:
                return StoredFact(id=row[0], text=row[1], vector=row[2], created_at=row[3])
            conn.execute(
                _SQL.insert_fact,
                (fact.id, tenant, customer_id, fact.text, fact.vector, fact.created_at),
            )
            return fact

        return await self._db.write(tx)

    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        rows = await self._db.run(
            lambda c: c.execute(_SQL.list_facts, (tenant, customer_id)).fetchall()
        )
        return [StoredFact(id=r[0], text=r[1], vector=r[2], created_at=r[3]) for r in rows]

    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        args = (tenant, customer_id, fact_id)
        return await self._db.write(lambda c: c.execute(_SQL.delete_fact, args).rowcount > 0)

    async def delete_facts(self, tenant: str, customer_id: str) -> int:
        args = (tenant, customer_id)
        return await self._db.write(lambda c: int(c.execute(_SQL.delete_facts, args).rowcount))

    async def aclose(self) -> None:
        await self._db.close()
