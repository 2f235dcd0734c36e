"""The bot's own SQLite tables: conversations, events, tickets, curated answers, review queue,
console tokens and channel de-duplication. Every row carries its tenant."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glm_agent.memory.sqlite_engine import retry_while_locked

__all__ = ["BotDB", "Conversation"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
  tenant TEXT NOT NULL, id TEXT NOT NULL, token_hash TEXT NOT NULL, channel TEXT NOT NULL,
  customer_id TEXT, locale TEXT, status TEXT NOT NULL, created_at REAL NOT NULL,
  updated_at REAL NOT NULL, waiting_since REAL, assigned_to TEXT, failures INTEGER DEFAULT 0,
  pending TEXT, tags TEXT NOT NULL DEFAULT '{}', last_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, id));
CREATE INDEX IF NOT EXISTS conv_customer ON conversations (tenant, channel, customer_id);
CREATE TABLE IF NOT EXISTS events (
  tenant TEXT NOT NULL, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL,
  type TEXT NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (tenant, conversation_id, seq));
CREATE TABLE IF NOT EXISTS console_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, data TEXT NOT NULL, ts REAL);
CREATE TABLE IF NOT EXISTS tickets (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, conversation_id TEXT NOT NULL,
  reason TEXT NOT NULL, trigger TEXT NOT NULL, summary TEXT NOT NULL, status TEXT NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS curated (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, question TEXT NOT NULL,
  answer TEXT NOT NULL, variants TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS review (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, conversation_id TEXT NOT NULL,
  message_id INTEGER, kind TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
  comment TEXT, status TEXT NOT NULL DEFAULT 'open', created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  token_hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, username TEXT NOT NULL,
  expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dedupe (
  tenant TEXT NOT NULL, channel TEXT NOT NULL, event_id TEXT NOT NULL, response TEXT,
  created_at REAL NOT NULL, PRIMARY KEY (tenant, channel, event_id));
"""


@dataclass
class Conversation:
    """One conversation's row."""

    tenant: str
    id: str
    token_hash: str
    channel: str
    customer_id: str | None
    locale: str | None
    status: str
    created_at: float
    updated_at: float
    waiting_since: float | None
    assigned_to: str | None
    failures: int
    pending: dict[str, Any] | None
    tags: dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0


def _conv(row: sqlite3.Row) -> Conversation:
    d = dict(row)
    d["pending"] = json.loads(d["pending"]) if d["pending"] else None
    d["tags"] = json.loads(d["tags"] or "{}")
    return Conversation(**d)


class BotDB:
    """Thread-safe access to the bot's SQLite file (WAL; one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                # several server workers may open a new file at once
                retry_while_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"), 30.0)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of a read query."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Run one write statement; returns lastrowid."""
        with self._lock:
            return self._db.execute(sql, args).lastrowid or 0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # --- conversations -----------------------------------------------------------------------

    def create_conversation(self, c: Conversation) -> None:
        """Insert a new conversation."""
        self.execute(
            "INSERT INTO conversations (tenant, id, token_hash, channel, customer_id, locale,"
            " status, created_at, updated_at, tags) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                c.tenant,
                c.id,
                c.token_hash,
                c.channel,
                c.customer_id,
                c.locale,
                c.status,
                c.created_at,
                c.updated_at,
                json.dumps(c.tags),
            ),
        )

    def conversation(self, tenant: str, conversation_id: str) -> Conversation | None:
        """A conversation of `tenant`, or None."""
        rows = self.query(
            "SELECT * FROM conversations WHERE tenant=? AND id=?", (tenant, conversation_id)
        )
        return _conv(rows[0]) if rows else None

    def conversations(self, tenant: str, status: str | None = None) -> list[Conversation]:
        """Conversations of `tenant` (of one status), oldest first."""
        if status is None:
            rows = self.query(
                "SELECT * FROM conversations WHERE tenant=? ORDER BY created_at", (tenant,)
            )
        else:
            rows = self.query(
                "SELECT * FROM conversations WHERE tenant=? AND status=? ORDER BY created_at",
                (tenant, status),
            )
        return [_conv(r) for r in rows]

    def find_open(self, tenant: str, channel: str, customer_id: str) -> Conversation | None:
        """The newest conversation of a channel's customer that is not closed."""
        rows = self.query(
            "SELECT * FROM conversations WHERE tenant=? AND channel=? AND customer_id=? "
            "AND status != 'closed' ORDER BY created_at DESC LIMIT 1",
            (tenant, channel, customer_id),
        )
        return _conv(rows[0]) if rows else None

    def update(self, tenant: str, conversation_id: str, **values: Any) -> None:
        """Set columns of a conversation (dicts are stored as JSON)."""
        values["updated_at"] = time.time()
        cols = ", ".join(f"{k}=?" for k in values)
        args = [json.dumps(v) if isinstance(v, dict) else v for v in values.values()]
        self.execute(
            f"UPDATE conversations SET {cols} WHERE tenant=? AND id=?",
            (*args, tenant, conversation_id),
        )

    # --- events ------------------------------------------------------------------------------

    def add_event(self, tenant: str, conversation_id: str, event: dict[str, Any]) -> int:
        """Append an event; returns its sequence number (also stored in event["id"] for
        messages, whose id is their sequence number)."""
        with self.tx() as db:
            row = db.execute(
                "SELECT last_seq FROM conversations WHERE tenant=? AND id=?",
                (tenant, conversation_id),
            ).fetchone()
            seq = (row[0] if row else 0) + 1
            if event.get("type") == "message":
                event["id"] = seq
            db.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?)",
                (
                    tenant,
                    conversation_id,
                    seq,
                    event["type"],
                    json.dumps(event, ensure_ascii=False),
                    event.get("ts", time.time()),
                ),
            )
            db.execute(
                "UPDATE conversations SET last_seq=?, updated_at=? WHERE tenant=? AND id=?",
                (seq, time.time(), tenant, conversation_id),
            )
        return seq

    def events(
        self, tenant: str, conversation_id: str, after: int = 0, type: str | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """(seq, event) of a conversation after `after`, in order."""
        sql = "SELECT seq, data FROM events WHERE tenant=? AND conversation_id=? AND seq>?"
        args: tuple[Any, ...] = (tenant, conversation_id, after)
        if type is not None:
            sql += " AND type=?"
            args += (type,)
        return [(r[0], json.loads(r[1])) for r in self.query(sql + " ORDER BY seq", args)]

    def add_console_event(self, tenant: str, event: dict[str, Any]) -> int:
        """Append an event for the console's live view."""
        return self.execute(
            "INSERT INTO console_events (tenant, data, ts) VALUES (?,?,?)",
            (tenant, json.dumps(event, ensure_ascii=False), time.time()),
        )

    def console_events(self, tenant: str, after: int) -> list[tuple[int, dict[str, Any]]]:
        """(seq, event) of the console feed after `after`."""
        rows = self.query(
            "SELECT seq, data FROM console_events WHERE tenant=? AND seq>? ORDER BY seq",
            (tenant, after),
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    def last_console_seq(self) -> int:
        """The newest console event's sequence number."""
        rows = self.query("SELECT MAX(seq) FROM console_events")
        return int(rows[0][0] or 0)
