"""Sessions in PostgreSQL (psycopg 3, an async connection pool).

An append locks the session's row (`SELECT ... FOR UPDATE`), so concurrent appends to one session
from any number of workers are serialised, and commits one transaction: with PostgreSQL's default
`synchronous_commit=on` a returned append is in the fsynced WAL and survives a crash of the worker
and of the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from glm_agent._scrub import scrub
from glm_agent.exceptions import MissingDependencyError, RunError, SessionConflictError, UserError
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
from glm_agent.memory.migrations import POSTGRES_MIGRATIONS, too_new

__all__ = ["PostgresStore"]

_SQL = Sql("%s")


class PostgresStore(SessionStore, FactStore):
    """Sessions in PostgreSQL (`postgresql://user@host:5432/db?schema=NAME`).

    Args:
        conninfo: A libpq connection string or URL.
        ttl: Seconds a session lives after its last write (None: forever).
        schema: The schema holding the tables (created if missing).
        pool_size: Most connections the pool opens.
        migrate_to: Apply migrations up to this schema version only (for migration tests).
        open_timeout: Seconds to keep trying to reach the server before giving up.
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
        open_timeout: float = 30.0,
    ) -> None:
        if not schema.replace("_", "").isalnum():
            raise UserError(f"schema name {schema!r} must be letters, digits and underscores")
        self.conninfo = conninfo
        self.ttl = ttl
        self.schema = schema
        self.pool_size = pool_size
        self._migrate_to = migrate_to
        self.open_timeout = open_timeout
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
        try:
            await pool.open(wait=True, timeout=self.open_timeout)
        except Exception as e:  # psycopg's text may hold the connection string, password too
            await pool.close()
            raise RunError(
                f"cannot connect to the session store {scrub(self.conninfo)}: "
                f"{type(e).__name__}: {scrub(str(e), [self.conninfo])}"
            ) from None
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
        await conn.execute(_SQL.delete_turns, (tenant, sid))
        await conn.execute(_SQL.delete_media, (tenant, sid))
        cur = await conn.execute(_SQL.delete_session, (tenant, sid))
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

    # --- the store's primitives -------------------------------------------------------------

    async def write(
        self,
        tenant: str,
        session_id: str,
        turn: str | None,
        expected_version: int | None,
        metadata: SessionMetadata | None,
    ) -> int:
        pool = await self._get_pool()
        if metadata is None and turn is not None:
            fast = await self._append_fast(pool, tenant, session_id, turn, expected_version)
            if fast is not None:
                return fast
        async with pool.connection() as conn, conn.transaction():
            t = now()
            version = await self._lock(conn, tenant, session_id, metadata, t)
            if expected_version is not None and version != expected_version:
                raise SessionConflictError(
                    tenant, session_id, expected=expected_version, actual=version
                )
            if turn is not None:
                version += 1
                await conn.execute(_SQL.insert_turn, (tenant, session_id, version, turn, t))
            await conn.execute(
                _SQL.bump_version, (version, t, expiry(self.ttl, t), tenant, session_id)
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
                f"AND {_SQL.live} RETURNING version) "
            ) + turn
            args = (t, expiry(self.ttl, t), tenant, sid, expected, t)
        async with pool.connection() as conn:
            row = await (await conn.execute(query, (*args, tenant, sid, payload, t))).fetchone()
        return None if row is None else int(row[0])

    async def read(self, tenant: str, session_id: str) -> tuple[SessionRecord, list[str]] | None:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            # REPEATABLE READ: the row and the turns come from one snapshot.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur = await conn.execute(_SQL.read_session, (tenant, session_id, now()))
            row = await cur.fetchone()
            if row is None:
                return None
            cur = await conn.execute(_SQL.read_turns, (tenant, session_id, row[2]))
            turns = await cur.fetchall()
        return SessionRecord.from_row(row), [t[0] for t in turns]

    async def query(
        self, tenant: str, customer_id: str | None, status: str | None, limit: int | None
    ) -> list[SessionRecord]:
        sql, args = _SQL.query(tenant, customer_id, status, limit, now())
        pool = await self._get_pool()
        async with pool.connection() as conn:
            rows = await (await conn.execute(sql, args)).fetchall()
        return [SessionRecord.from_row(r) for r in rows]

    async def remove(self, tenant: str, session_id: str) -> bool:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            return await self._delete(conn, tenant, session_id)

    async def write_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        text = None if summary is None else summary.text
        covered = None if summary is None else summary.covered
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(_SQL.write_summary, (text, covered, tenant, session_id, now()))
        return bool(cur.rowcount > 0)

    async def purge(self) -> int:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            rows = await (
                await conn.execute(
                    "DELETE FROM sessions WHERE expires_at <= %s RETURNING tenant, session_id",
                    (now(),),
                )
            ).fetchall()
            for tenant, sid in rows:
                await conn.execute(_SQL.delete_turns, (tenant, sid))
                await conn.execute(_SQL.delete_media, (tenant, sid))
        return len(rows)

    async def write_media(
        self, tenant: str, session_id: str, media_id: str, mime: str, data: bytes
    ) -> None:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            await conn.execute(_SQL.insert_media, (tenant, session_id, media_id, mime, data, now()))

    async def read_media(
        self, tenant: str, session_id: str, media_id: str
    ) -> tuple[str, bytes] | None:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(_SQL.read_media, (tenant, session_id, media_id, now()))
            row = await cur.fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    # --- long-term facts --------------------------------------------------------------------

    async def insert_fact(self, tenant: str, customer_id: str, fact: StoredFact) -> StoredFact:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                _SQL.insert_fact + " ON CONFLICT DO NOTHING",
                (fact.id, tenant, customer_id, fact.text, fact.vector, fact.created_at),
            )
            row = await (
                await conn.execute(
                    f"SELECT {FACT_COLUMNS} FROM facts "
                    "WHERE tenant = %s AND customer_id = %s AND md5(text) = md5(%s)",
                    (tenant, customer_id, fact.text),
                )
            ).fetchone()
        return StoredFact(id=row[0], text=row[1], vector=bytes(row[2]), created_at=row[3])

    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            rows = await (await conn.execute(_SQL.list_facts, (tenant, customer_id))).fetchall()
        return [StoredFact(id=r[0], text=r[1], vector=bytes(r[2]), created_at=r[3]) for r in rows]

    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(_SQL.delete_fact, (tenant, customer_id, fact_id))
        return bool(cur.rowcount > 0)

    async def delete_facts(self, tenant: str, customer_id: str) -> int:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(_SQL.delete_facts, (tenant, customer_id))
        return int(cur.rowcount)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
