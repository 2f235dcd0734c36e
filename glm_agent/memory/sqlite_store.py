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
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glm_agent.exceptions import SessionConflictError
from glm_agent.memory._session import (
    Session,
    SessionInfo,
    SessionMetadata,
    SessionStatus,
    SessionStore,
    StoredFact,
    Summary,
    check_id,
    check_status,
    dump_data,
    dump_messages,
    expiry,
    load_messages,
    metadata_from_row,
    now,
)
from glm_agent.memory.sqlite_engine import SQLiteEngine
from glm_agent.messages import Message

__all__ = ["SQLiteStore"]


_SESSION_COLUMNS = (
    "tenant, session_id, version, customer_id, channel, status, data, "
    "created_at, updated_at, expires_at, summary, summary_covered"
)


def _info(row: Sequence[Any]) -> SessionInfo:
    return SessionInfo(
        tenant=row[0],
        session_id=row[1],
        version=row[2],
        metadata=metadata_from_row(row[3], row[4], row[5], row[6]),
        created_at=row[7],
        updated_at=row[8],
        expires_at=row[9],
    )


class SQLiteStore(SessionStore):
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

    def _drop_if_expired(self, conn: sqlite3.Connection, tenant: str, sid: str, t: float) -> None:
        row = conn.execute(
            "SELECT expires_at FROM sessions WHERE tenant = ? AND session_id = ?", (tenant, sid)
        ).fetchone()
        if row is not None and row[0] is not None and row[0] <= t:
            self._delete(conn, tenant, sid)

    @staticmethod
    def _delete(conn: sqlite3.Connection, tenant: str, sid: str) -> bool:
        conn.execute("DELETE FROM turns WHERE tenant = ? AND session_id = ?", (tenant, sid))
        cur = conn.execute(
            "DELETE FROM sessions WHERE tenant = ? AND session_id = ?", (tenant, sid)
        )
        return cur.rowcount > 0

    def _upsert(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        sid: str,
        meta: SessionMetadata | None,
        t: float,
    ) -> int:
        """Create the session if missing, apply `meta`; the current version."""
        self._drop_if_expired(conn, tenant, sid, t)
        row = conn.execute(
            "SELECT version, customer_id, channel, status, data FROM sessions "
            "WHERE tenant = ? AND session_id = ?",
            (tenant, sid),
        ).fetchone()
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
            m = metadata_from_row(row[1], row[2], row[3], row[4]).merged(meta)
            conn.execute(
                "UPDATE sessions SET customer_id = ?, channel = ?, status = ?, data = ? "
                "WHERE tenant = ? AND session_id = ?",
                (m.customer_id, m.channel, m.status, dump_data(m.data), tenant, sid),
            )
        return int(row[0])

    # --- sessions ---------------------------------------------------------------------------

    async def append(
        self,
        tenant: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        metadata: SessionMetadata | None = None,
    ) -> int:
        check_id("tenant", tenant)
        check_id("session_id", session_id)
        payload = dump_messages(messages)

        def tx(conn: sqlite3.Connection) -> int:
            t = now()
            current = self._upsert(conn, tenant, session_id, metadata, t)
            if expected_version is not None and current != expected_version:
                raise SessionConflictError(
                    tenant, session_id, expected=expected_version, actual=current
                )
            version = current + 1
            conn.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                (tenant, session_id, version, payload, t),
            )
            conn.execute(
                "UPDATE sessions SET version = ?, updated_at = ?, expires_at = ? "
                "WHERE tenant = ? AND session_id = ?",
                (version, t, expiry(self.ttl, t), tenant, session_id),
            )
            return version

        return await self._db.write(tx)

    async def load(self, tenant: str, session_id: str) -> Session | None:
        def read(conn: sqlite3.Connection) -> Session | None:
            # One read transaction, so the row and the turns are one snapshot.
            conn.execute("BEGIN")
            try:
                row = conn.execute(
                    f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE tenant = ? AND session_id = ? "
                    "AND (expires_at IS NULL OR expires_at > ?)",
                    (tenant, session_id, now()),
                ).fetchone()
                if row is None:
                    return None
                turns = conn.execute(
                    "SELECT messages FROM turns WHERE tenant = ? AND session_id = ? "
                    "AND version <= ? ORDER BY version",
                    (tenant, session_id, row[2]),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return _session(row, [t[0] for t in turns])

        return await self._db.run(read)

    async def list_sessions(
        self,
        tenant: str,
        *,
        customer_id: str | None = None,
        status: SessionStatus | None = None,
        limit: int = 100,
    ) -> list[SessionInfo]:
        sql = (
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE tenant = ? "
            "AND (expires_at IS NULL OR expires_at > ?)"
        )
        args: list[Any] = [tenant, now()]
        if customer_id is not None:
            sql += " AND customer_id = ?"
            args.append(customer_id)
        if status is not None:
            sql += " AND status = ?"
            args.append(check_status(status))
        sql += " ORDER BY updated_at DESC, session_id LIMIT ?"
        args.append(limit)
        rows = await self._db.run(lambda c: c.execute(sql, args).fetchall())
        return [_info(r) for r in rows]

    async def delete(self, tenant: str, session_id: str) -> bool:
        return await self._db.write(lambda c: self._delete(c, tenant, session_id))

    async def delete_customer(self, tenant: str, customer_id: str) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            ids = conn.execute(
                "SELECT session_id FROM sessions WHERE tenant = ? AND customer_id = ?",
                (tenant, customer_id),
            ).fetchall()
            for (sid,) in ids:
                self._delete(conn, tenant, sid)
            conn.execute(
                "DELETE FROM facts WHERE tenant = ? AND customer_id = ?", (tenant, customer_id)
            )
            return len(ids)

        return await self._db.write(tx)

    async def set_metadata(self, tenant: str, session_id: str, metadata: SessionMetadata) -> None:
        check_id("tenant", tenant)
        check_id("session_id", session_id)

        def tx(conn: sqlite3.Connection) -> None:
            t = now()
            self._upsert(conn, tenant, session_id, metadata, t)
            conn.execute(
                "UPDATE sessions SET updated_at = ?, expires_at = ? "
                "WHERE tenant = ? AND session_id = ?",
                (t, expiry(self.ttl, t), tenant, session_id),
            )

        await self._db.write(tx)

    async def set_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        text = None if summary is None else summary.text
        covered = None if summary is None else summary.covered

        def tx(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE sessions SET summary = ?, summary_covered = ? "
                "WHERE tenant = ? AND session_id = ? AND (expires_at IS NULL OR expires_at > ?)",
                (text, covered, tenant, session_id, now()),
            )
            return cur.rowcount > 0

        return await self._db.write(tx)

    async def purge_expired(self) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT tenant, session_id FROM sessions WHERE expires_at <= ?", (now(),)
            ).fetchall()
            for tenant, sid in rows:
                self._delete(conn, tenant, sid)
            return len(rows)

        return await self._db.write(tx)

    # --- long-term facts --------------------------------------------------------------------

    async def add_fact(self, tenant: str, customer_id: str, text: str, vector: bytes) -> StoredFact:
        check_id("tenant", tenant)
        check_id("customer_id", customer_id)
        fact = StoredFact(id=uuid.uuid4().hex, text=text, vector=vector, created_at=now())

        def tx(conn: sqlite3.Connection) -> StoredFact:
            row = conn.execute(
                "SELECT id, text, vector, created_at FROM facts "
                "WHERE tenant = ? AND customer_id = ? AND text = ?",
                (tenant, customer_id, text),
            ).fetchone()
            if row is not None:
                return StoredFact(id=row[0], text=row[1], vector=row[2], created_at=row[3])
            conn.execute(
                "INSERT INTO facts VALUES (?, ?, ?, ?, ?, ?)",
                (fact.id, tenant, customer_id, text, vector, fact.created_at),
            )
            return fact

        return await self._db.write(tx)

    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT id, text, vector, created_at FROM facts "
                "WHERE tenant = ? AND customer_id = ? ORDER BY created_at, id",
                (tenant, customer_id),
            ).fetchall()
        )
        return [StoredFact(id=r[0], text=r[1], vector=r[2], created_at=r[3]) for r in rows]

    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM facts WHERE tenant = ? AND customer_id = ? AND id = ?",
                (tenant, customer_id, fact_id),
            )
            return cur.rowcount > 0

        return await self._db.write(tx)

    async def aclose(self) -> None:
        await self._db.close()


def _session(row: Sequence[Any], turns: list[str]) -> Session:
    info = _info(row)
    messages: list[Message] = []
    sizes: list[int] = []
    for payload in turns:
        turn = load_messages(payload)
        messages.extend(turn)
        sizes.append(len(turn))
    summary = None if row[10] is None else Summary(text=row[10], covered=row[11] or 0)
    return Session(**dict(info), messages=messages, turns=sizes, summary=summary)
