"""Sessions in PostgreSQL (psycopg 3, an async connection pool).

An append locks the session's row (`SELECT ... FOR UPDATE`), so concurrent appends to one session
from any number of workers are serialised, and commits one transaction: with PostgreSQL's default
`synchronous_commit=on` a returned append is in the fsynced WAL and survives a crash of the worker
and of the server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from glm_agent.exceptions import MissingDependencyError, SessionConflictError, UserError
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
from glm_agent.memory.migrations import POSTGRES_MIGRATIONS, too_new
from glm_agent.messages import Message

__all__ = ["PostgresStore"]


_COLUMNS = (
    "tenant, session_id, version, customer_id, channel, status, data, "
    "created_at, updated_at, expires_at, summary, summary_covered"
)
_LIVE = "(expires_at IS NULL OR expires_at > %s)"


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


class PostgresStore(SessionStore):
    """Sessions in PostgreSQL (`postgresql://user@host:5432/db?schema=NAME`).

    Args:
        conninfo: A libpq connection string or URL.
        ttl: Seconds a session lives after its last write (None: forever).
        schema: The schema holding the tables (created if missing).
        pool_size: Most connections the pool opens.
        migrate_to: Apply migrations up to this schema version only (for migration tests).
    """

    scheme = "postgresql"

    def __init__(
        self,
        conninfo: str,
        *,
        ttl: float | None = None,
        schema: str = "public",
        pool_size: int = 10,
        migrate_to: int | None = None,
    ) -> None:
        if not schema.replace("_", "").isalnum():
            raise UserError(f"schema name {schema!r} must be letters, digits and underscores")
        self.conninfo = conninfo
        self.ttl = ttl
        self.schema = schema
        self.pool_size = pool_size
        self._migrate_to = migrate_to
        self._pool: Any = None
        self._opening: asyncio.Lock | None = None

    async def _get_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await self._open_pool()
        return self._pool

    async def _open_pool(self) -> Any:
        try:
            from psycopg import sql
            from psycopg_pool import AsyncConnectionPool
        except ImportError as e:
            raise MissingDependencyError("psycopg", "memory", "PostgreSQL sessions") from e
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema))

        async def configure(conn: Any) -> None:
            await conn.execute(search_path)

        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max(1, self.pool_size),
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
        )
        await pool.open(wait=True)
        try:
            await self._migrate(pool)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _migrate(self, pool: Any) -> None:
        from psycopg import sql

        target = len(POSTGRES_MIGRATIONS) if self._migrate_to is None else self._migrate_to
        async with pool.connection() as conn, conn.transaction():
            # Several workers may start at once: one migrates, the others wait for it.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            await conn.execute("CREATE TABLE IF NOT EXISTS glm_agent_schema (version INT NOT NULL)")
            row = await (await conn.execute("SELECT version FROM glm_agent_schema")).fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(POSTGRES_MIGRATIONS):
                raise too_new(f"schema {self.schema!r}", current, len(POSTGRES_MIGRATIONS))
            for stmts in POSTGRES_MIGRATIONS[current:target]:
                for stmt in stmts:
                    await conn.execute(stmt)
            version = max(current, target)
            if row is None:
                await conn.execute("INSERT INTO glm_agent_schema VALUES (%s)", (version,))
            else:
                await conn.execute("UPDATE glm_agent_schema SET version = %s", (version,))

    async def schema_version(self) -> int:
        """The schema's version."""
        pool = await self._get_pool()
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT version FROM glm_agent_schema")).fetchone()
        return int(row[0])

    @staticmethod
    async def _delete(conn: Any, tenant: str, sid: str) -> bool:
        key = (tenant, sid)
        await conn.execute("DELETE FROM turns WHERE tenant = %s AND session_id = %s", key)
        cur = await conn.execute("DELETE FROM sessions WHERE tenant = %s AND session_id = %s", key)
        return bool(cur.rowcount > 0)

    async def _lock(
        self, conn: Any, tenant: str, sid: str, meta: SessionMetadata | None, t: float
    ) -> int:
        """Create the session if missing, lock its row, apply `meta`; its current version."""
        key = (tenant, sid)
        select = (
            "SELECT version, expires_at, customer_id, channel, status, data FROM sessions "
            "WHERE tenant = %s AND session_id = %s FOR UPDATE"
        )
        row = await (await conn.execute(select, key)).fetchone()
        if row is not None and row[1] is not None and row[1] <= t:
            await self._delete(conn, tenant, sid)
            row = None
        if row is None:
            m = SessionMetadata().merged(meta)
            await conn.execute(
                "INSERT INTO sessions (tenant, session_id, version, customer_id, channel, status, "
                "data, created_at, updated_at, expires_at) "
                "VALUES (%s, %s, 0, %s, %s, %s, %s::jsonb, %s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant, sid, m.customer_id, m.channel, m.status, dump_data(m.data), t, t,
                 expiry(self.ttl, t)),
            )  # fmt: skip
            # Another worker may have created it first: lock whichever row won.
            row = await (await conn.execute(select, key)).fetchone()
            if row is None:  # and deleted it again before we could lock it
                return await self._lock(conn, tenant, sid, meta, t)
            if meta is None:
                return int(row[0])
        if meta is not None:
            m = metadata_from_row(row[2], row[3], row[4], row[5]).merged(meta)
            await conn.execute(
                "UPDATE sessions SET customer_id = %s, channel = %s, status = %s, data = %s::jsonb "
                "WHERE tenant = %s AND session_id = %s",
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
        pool = await self._get_pool()
        if metadata is None:
            fast = await self._append_fast(pool, tenant, session_id, payload, expected_version)
            if fast is not None:
                return fast
        async with pool.connection() as conn, conn.transaction():
            t = now()
            current = await self._lock(conn, tenant, session_id, metadata, t)
            if expected_version is not None and current != expected_version:
                raise SessionConflictError(
                    tenant, session_id, expected=expected_version, actual=current
                )
            version = current + 1
            await conn.execute(
                "INSERT INTO turns VALUES (%s, %s, %s, %s, %s)",
                (tenant, session_id, version, payload, t),
            )
            await conn.execute(
                "UPDATE sessions SET version = %s, updated_at = %s, expires_at = %s "
                "WHERE tenant = %s AND session_id = %s",
                (version, t, expiry(self.ttl, t), tenant, session_id),
            )
        return version

    async def _append_fast(
        self, pool: Any, tenant: str, sid: str, payload: str, expected: int | None
    ) -> int | None:
        """The common append as one statement (one round trip, its own transaction).

        None when it does not apply (an expired session, a version that does not match): the
        transactional path then handles the case and raises the conflict.
        """
        t = now()
        turn = "INSERT INTO turns SELECT %s, %s, version, %s, %s FROM s RETURNING version"
        if expected is None or expected == 0:
            query = (
                "WITH s AS (INSERT INTO sessions (tenant, session_id, version, created_at, "
                "updated_at, expires_at) VALUES (%s, %s, 1, %s, %s, %s) "
                "ON CONFLICT (tenant, session_id) DO UPDATE SET version = sessions.version + 1, "
                "updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at "
                "WHERE (sessions.expires_at IS NULL OR sessions.expires_at > %s) "
                "AND (%s::bigint IS NULL OR sessions.version = %s::bigint) RETURNING version) "
            ) + turn
            args: tuple[Any, ...] = (tenant, sid, t, t, expiry(self.ttl, t), t, expected, expected)
        else:
            query = (
                "WITH s AS (UPDATE sessions SET version = version + 1, updated_at = %s, "
                "expires_at = %s WHERE tenant = %s AND session_id = %s AND version = %s "
                f"AND {_LIVE} RETURNING version) "
            ) + turn
            args = (t, expiry(self.ttl, t), tenant, sid, expected, t)
        async with pool.connection() as conn:
            row = await (await conn.execute(query, (*args, tenant, sid, payload, t))).fetchone()
        return None if row is None else int(row[0])

    async def load(self, tenant: str, session_id: str) -> Session | None:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            # REPEATABLE READ: the row and the turns come from one snapshot.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = await (
                await conn.execute(
                    f"SELECT {_COLUMNS} FROM sessions WHERE tenant = %s AND session_id = %s "
                    f"AND {_LIVE}",
                    (tenant, session_id, now()),
                )
            ).fetchone()
            if row is None:
                return None
            turns = await (
                await conn.execute(
                    "SELECT messages FROM turns WHERE tenant = %s AND session_id = %s "
                    "AND version <= %s ORDER BY version",
                    (tenant, session_id, row[2]),
                )
            ).fetchall()
        messages: list[Message] = []
        sizes: list[int] = []
        for (payload,) in turns:
            turn = load_messages(payload)
            messages.extend(turn)
            sizes.append(len(turn))
        summary = None if row[10] is None else Summary(text=row[10], covered=row[11] or 0)
        return Session(**dict(_info(row)), messages=messages, turns=sizes, summary=summary)

    async def list_sessions(
        self,
        tenant: str,
        *,
        customer_id: str | None = None,
        status: SessionStatus | None = None,
        limit: int = 100,
    ) -> list[SessionInfo]:
        query = f"SELECT {_COLUMNS} FROM sessions WHERE tenant = %s AND {_LIVE}"
        args: list[Any] = [tenant, now()]
        if customer_id is not None:
            query += " AND customer_id = %s"
            args.append(customer_id)
        if status is not None:
            query += " AND status = %s"
            args.append(check_status(status))
        query += " ORDER BY updated_at DESC, session_id LIMIT %s"
        args.append(limit)
        pool = await self._get_pool()
        async with pool.connection() as conn:
            rows = await (await conn.execute(query, args)).fetchall()
        return [_info(r) for r in rows]

    async def delete(self, tenant: str, session_id: str) -> bool:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            return await self._delete(conn, tenant, session_id)

    async def delete_customer(self, tenant: str, customer_id: str) -> int:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(
                    "SELECT session_id FROM sessions WHERE tenant = %s AND customer_id = %s "
                    "FOR UPDATE",
                    (tenant, customer_id),
                )
            ).fetchall()
            for (sid,) in rows:
                await self._delete(conn, tenant, sid)
            await conn.execute(
                "DELETE FROM facts WHERE tenant = %s AND customer_id = %s", (tenant, customer_id)
            )
        return len(rows)

    async def set_metadata(self, tenant: str, session_id: str, metadata: SessionMetadata) -> None:
        check_id("tenant", tenant)
        check_id("session_id", session_id)
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            t = now()
            await self._lock(conn, tenant, session_id, metadata, t)
            await conn.execute(
                "UPDATE sessions SET updated_at = %s, expires_at = %s "
                "WHERE tenant = %s AND session_id = %s",
                (t, expiry(self.ttl, t), tenant, session_id),
            )

    async def set_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE sessions SET summary = %s, summary_covered = %s "
                f"WHERE tenant = %s AND session_id = %s AND {_LIVE}",
                (
                    None if summary is None else summary.text,
                    None if summary is None else summary.covered,
                    tenant,
                    session_id,
                    now(),
                ),
            )
        return bool(cur.rowcount > 0)

    async def purge_expired(self) -> int:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(
                    "DELETE FROM sessions WHERE expires_at <= %s RETURNING tenant, session_id",
                    (now(),),
                )
            ).fetchall()
            for tenant, sid in rows:
                await conn.execute(
                    "DELETE FROM turns WHERE tenant = %s AND session_id = %s", (tenant, sid)
                )
        return len(rows)

    # --- long-term facts --------------------------------------------------------------------

    async def add_fact(self, tenant: str, customer_id: str, text: str, vector: bytes) -> StoredFact:
        check_id("tenant", tenant)
        check_id("customer_id", customer_id)
        fact = StoredFact(id=uuid.uuid4().hex, text=text, vector=vector, created_at=now())
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO facts VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (fact.id, tenant, customer_id, text, vector, fact.created_at),
            )
            row = await (
                await conn.execute(
                    "SELECT id, text, vector, created_at FROM facts "
                    "WHERE tenant = %s AND customer_id = %s AND md5(text) = md5(%s)",
                    (tenant, customer_id, text),
                )
            ).fetchone()
        return StoredFact(id=row[0], text=row[1], vector=bytes(row[2]), created_at=row[3])

    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id, text, vector, created_at FROM facts "
                    "WHERE tenant = %s AND customer_id = %s ORDER BY created_at, id",
                    (tenant, customer_id),
                )
            ).fetchall()
        return [StoredFact(id=r[0], text=r[1], vector=bytes(r[2]), created_at=r[3]) for r in rows]

    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM facts WHERE tenant = %s AND customer_id = %s AND id = %s",
                (tenant, customer_id, fact_id),
            )
        return bool(cur.rowcount > 0)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
