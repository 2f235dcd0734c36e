"""Schema versions of the SQL stores, and the migrations between them.

Each store keeps its schema version in a one-row table `glm_agent_schema` and, when it opens,
applies the migrations past it in one transaction (SQLite: under its write lock; PostgreSQL: under
an advisory lock, so workers starting together migrate once). A database newer than the code is
refused rather than guessed at. To change a schema, append a migration to both lists; never edit
one that has shipped.
"""

from __future__ import annotations

from glm_agent.exceptions import UserError

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "too_new"]

SQLITE_MIGRATIONS: list[list[str]] = [
    # 1: sessions and their turns
    [
        """CREATE TABLE sessions (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            customer_id TEXT, channel TEXT, status TEXT NOT NULL DEFAULT 'bot',
            data TEXT NOT NULL DEFAULT '{}',
            summary TEXT, summary_covered INTEGER,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL,
            PRIMARY KEY (tenant, session_id))""",
        "CREATE INDEX sessions_by_customer ON sessions (tenant, customer_id)",
        "CREATE INDEX sessions_by_update ON sessions (tenant, updated_at)",
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
        """CREATE TABLE turns (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, version INTEGER NOT NULL,
            messages TEXT NOT NULL, created_at REAL NOT NULL,
            PRIMARY KEY (tenant, session_id, version))""",
    ],
    # 2: long-term facts per customer
    [
        """CREATE TABLE facts (
            id TEXT PRIMARY KEY, tenant TEXT NOT NULL, customer_id TEXT NOT NULL,
            text TEXT NOT NULL, vector BLOB NOT NULL, created_at REAL NOT NULL,
            UNIQUE (tenant, customer_id, text))""",
    ],
    # 3: images kept with their session (messages refer to them as media:<sha256>)
    [
        """CREATE TABLE media (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, id TEXT NOT NULL,
            mime TEXT NOT NULL, data BLOB NOT NULL, created_at REAL NOT NULL,
            PRIMARY KEY (tenant, session_id, id))""",
    ],
]
"""Schema migrations: entry `i` takes a database from version `i` to `i + 1`."""

POSTGRES_MIGRATIONS: list[list[str]] = [
    # 1: sessions and their turns
    [
        """CREATE TABLE sessions (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL,
            version BIGINT NOT NULL DEFAULT 0,
            customer_id TEXT, channel TEXT, status TEXT NOT NULL DEFAULT 'bot',
            data JSONB NOT NULL DEFAULT '{}',
            summary TEXT, summary_covered INTEGER,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            PRIMARY KEY (tenant, session_id))""",
        "CREATE INDEX sessions_by_customer ON sessions (tenant, customer_id)",
        "CREATE INDEX sessions_by_update ON sessions (tenant, updated_at)",
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
        """CREATE TABLE turns (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, version BIGINT NOT NULL,
            messages TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, session_id, version))""",
    ],
    # 2: long-term facts per customer
    [
        """CREATE TABLE facts (
            id TEXT PRIMARY KEY, tenant TEXT NOT NULL, customer_id TEXT NOT NULL,
            text TEXT NOT NULL, vector BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
        # On the text's hash: a btree entry holds at most about 2.7 kB, a fact may be longer.
        "CREATE UNIQUE INDEX facts_by_text ON facts (tenant, customer_id, md5(text))",
    ],
    # 3: images kept with their session (messages refer to them as media:<sha256>)
    [
        """CREATE TABLE media (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, id TEXT NOT NULL,
            mime TEXT NOT NULL, data BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, session_id, id))""",
    ],
]
"""Schema migrations: entry `i` takes a schema from version `i` to `i + 1`."""


def too_new(where: str, current: int, supported: int) -> UserError:
    """The error for a database whose schema is newer than this code knows."""
    return UserError(
        f"{where}: schema version {current} is newer than this glm-agent supports "
        f"({supported}); upgrade glm-agent"
    )
