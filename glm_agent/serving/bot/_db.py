"""The bot's own SQLite tables: conversations, events, tickets, curated answers, review queue,
console tokens, channel de-duplication and per-customer tool-call counts. Every row carries its
tenant. All of the bot's SQL is in this module."""

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
CREATE TABLE IF NOT EXISTS policy_calls (
  tenant TEXT NOT NULL, customer_id TEXT NOT NULL, tool TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS policy_calls_by_customer ON policy_calls (tenant, customer_id, tool, at);
"""
# Columns added after the first release, with their types (added to older files at open).
_ADDED_COLUMNS = {"conversations": {"verified_customer": "TEXT", "verified_by": "TEXT"}}


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
    verified_customer: str | None = None
    """The customer the conversation acts for once verified (by a signed channel or a
    verification tool); only the pipeline sets it, never a request or a console edit."""
    verified_by: str | None = None
    """How it was verified: `channel:<name>` or `tool:<name>`."""


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
            for table, columns in _ADDED_COLUMNS.items():
                have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

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

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Run one write statement; lastrowid."""
        with self._lock:
            return self._db.execute(sql, args).lastrowid or 0

    def _changed(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Run one write statement; the rows it changed."""
        with self._lock:
            return int(self._db.execute(sql, args).rowcount)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # --- conversations -----------------------------------------------------------------------

    def create_conversation(self, c: Conversation) -> None:
        """Insert a new conversation."""
        self._execute(
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
        rows = self._query(
            "SELECT * FROM conversations WHERE tenant=? AND id=?", (tenant, conversation_id)
        )
        return _conv(rows[0]) if rows else None

    def conversations(self, tenant: str, status: str | None = None) -> list[Conversation]:
        """Conversations of `tenant` (of one status), oldest first."""
        if status is None:
            rows = self._query(
                "SELECT * FROM conversations WHERE tenant=? ORDER BY created_at", (tenant,)
            )
        else:
            rows = self._query(
                "SELECT * FROM conversations WHERE tenant=? AND status=? ORDER BY created_at",
                (tenant, status),
            )
        return [_conv(r) for r in rows]

    def find_open(self, tenant: str, channel: str, customer_id: str) -> Conversation | None:
        """The newest conversation of a channel's customer that is not closed."""
        rows = self._query(
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
        self._execute(
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
        return [(r[0], json.loads(r[1])) for r in self._query(sql + " ORDER BY seq", args)]

    def add_console_event(self, tenant: str, event: dict[str, Any]) -> int:
        """Append an event for the console's live view."""
        return self._execute(
            "INSERT INTO console_events (tenant, data, ts) VALUES (?,?,?)",
            (tenant, json.dumps(event, ensure_ascii=False), time.time()),
        )

    def console_events(self, tenant: str, after: int) -> list[tuple[int, dict[str, Any]]]:
        """(seq, event) of the console feed after `after`."""
        rows = self._query(
            "SELECT seq, data FROM console_events WHERE tenant=? AND seq>? ORDER BY seq",
            (tenant, after),
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    def last_console_seq(self) -> int:
        """The newest console event's sequence number."""
        rows = self._query("SELECT MAX(seq) FROM console_events")
        return int(rows[0][0] or 0)

    # --- tickets -----------------------------------------------------------------------------

    def add_ticket(
        self, tenant: str, conversation_id: str, reason: str, trigger: str, summary: str
    ) -> int:
        """Open a ticket for a handed-off conversation; its id."""
        return self._execute(
            "INSERT INTO tickets (tenant, conversation_id, reason, trigger, summary, status,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (tenant, conversation_id, reason, trigger, summary, "open", time.time()),
        )

    def latest_ticket(self, tenant: str, conversation_id: str) -> dict[str, Any] | None:
        """The newest ticket of a conversation."""
        rows = self._query(
            "SELECT id, reason, trigger, summary, status, created_at FROM tickets "
            "WHERE tenant=? AND conversation_id=? ORDER BY id DESC LIMIT 1",
            (tenant, conversation_id),
        )
        return dict(rows[0]) if rows else None

    def close_tickets(self, tenant: str, conversation_id: str) -> None:
        """Close every ticket of a conversation."""
        self._execute(
            "UPDATE tickets SET status='closed' WHERE tenant=? AND conversation_id=?",
            (tenant, conversation_id),
        )

    def count_tickets(self, tenant: str) -> int:
        """How many tickets the tenant has."""
        return int(self._query("SELECT COUNT(*) FROM tickets WHERE tenant=?", (tenant,))[0][0])

    def ticket_triggers(self, tenant: str) -> list[str]:
        """The trigger of each ticket, oldest first."""
        rows = self._query("SELECT trigger FROM tickets WHERE tenant=? ORDER BY id", (tenant,))
        return [str(r[0]) for r in rows]

    # --- curated answers ---------------------------------------------------------------------

    def curated(self, tenant: str) -> list[dict[str, Any]]:
        """Every curated answer of the tenant, by id."""
        rows = self._query("SELECT * FROM curated WHERE tenant=? ORDER BY id", (tenant,))
        return [
            {
                "id": r["id"],
                "question": r["question"],
                "answer": r["answer"],
                "variants": json.loads(r["variants"]),
            }
            for r in rows
        ]

    def add_curated(self, tenant: str, question: str, answer: str, variants: list[str]) -> int:
        """Insert a curated answer; its id."""
        now = time.time()
        return self._execute(
            "INSERT INTO curated (tenant, question, answer, variants, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?)",
            (tenant, question, answer, json.dumps(variants, ensure_ascii=False), now, now),
        )

    def update_curated(
        self, tenant: str, answer_id: int, question: str, answer: str, variants: list[str]
    ) -> bool:
        """Replace a curated answer; False when there is no such answer."""
        return bool(
            self._changed(
                "UPDATE curated SET question=?, answer=?, variants=?, updated_at=?"
                " WHERE tenant=? AND id=?",
                (
                    question,
                    answer,
                    json.dumps(variants, ensure_ascii=False),
                    time.time(),
                    tenant,
                    answer_id,
                ),
            )
        )

    def delete_curated(self, tenant: str, answer_id: int) -> bool:
        """Remove a curated answer; False when there is no such answer."""
        return bool(
            self._changed("DELETE FROM curated WHERE tenant=? AND id=?", (tenant, answer_id))
        )

    # --- the review queue --------------------------------------------------------------------

    def add_review(
        self,
        tenant: str,
        conversation_id: str,
        message_id: int | None,
        kind: str,
        question: str,
        answer: str,
        comment: str | None = None,
    ) -> int:
        """Queue an item for review (a rated answer, a human's answer); its id."""
        return self._execute(
            "INSERT INTO review (tenant, conversation_id, message_id, kind, question, answer,"
            " comment, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (tenant, conversation_id, message_id, kind, question, answer, comment, time.time()),
        )

    def reviews(self, tenant: str, status: str) -> list[dict[str, Any]]:
        """Review items of one status, newest first."""
        rows = self._query(
            "SELECT id, conversation_id, message_id, kind, question, answer, comment, status,"
            " created_at FROM review WHERE tenant=? AND status=? ORDER BY id DESC",
            (tenant, status),
        )
        return [dict(r) for r in rows]

    def review(self, tenant: str, review_id: int) -> dict[str, Any] | None:
        """One review item."""
        rows = self._query("SELECT * FROM review WHERE tenant=? AND id=?", (tenant, review_id))
        return dict(rows[0]) if rows else None

    def set_review_status(self, tenant: str, review_id: int, status: str) -> None:
        """Mark a review item (`promoted`...)."""
        self._execute(
            "UPDATE review SET status=? WHERE tenant=? AND id=?", (status, tenant, review_id)
        )

    # --- console tokens ----------------------------------------------------------------------

    def add_token(self, token_hash: str, tenant: str, username: str, expires_at: float) -> None:
        """Store a console login's token hash."""
        self._execute(
            "INSERT INTO tokens VALUES (?,?,?,?)", (token_hash, tenant, username, expires_at)
        )

    def token_user(self, token_hash: str, tenant: str) -> str | None:
        """The username of a live token."""
        rows = self._query(
            "SELECT username FROM tokens WHERE token_hash=? AND tenant=? AND expires_at>?",
            (token_hash, tenant, time.time()),
        )
        return str(rows[0][0]) if rows else None

    def delete_token(self, token_hash: str) -> bool:
        """Revoke a token (logout); False when it was not there."""
        return bool(self._changed("DELETE FROM tokens WHERE token_hash=?", (token_hash,)))

    # --- channel de-duplication --------------------------------------------------------------

    def dedupe_response(self, tenant: str, channel: str, event_id: str) -> str | None:
        """The stored response to an event already handled, if any."""
        rows = self._query(
            "SELECT response FROM dedupe WHERE tenant=? AND channel=? AND event_id=?",
            (tenant, channel, event_id),
        )
        return rows[0][0] if rows and rows[0][0] else None

    def claim_event(self, tenant: str, channel: str, event_id: str) -> bool:
        """Record an event id as being handled; False when another worker already claimed it
        (atomic across processes: the first insert wins)."""
        return bool(
            self._changed(
                "INSERT OR IGNORE INTO dedupe VALUES (?,?,?,?,?)",
                (tenant, channel, event_id, None, time.time()),
            )
        )

    def set_event_response(self, tenant: str, channel: str, event_id: str, response: str) -> None:
        """Keep the response to a handled event (for retries of the same event)."""
        self._execute(
            "UPDATE dedupe SET response=? WHERE tenant=? AND channel=? AND event_id=?",
            (response, tenant, channel, event_id),
        )

    # --- per-customer tool-call counts (a glm_agent.tools.PolicyState) ----------------------

    async def count(self, tenant: str, customer_id: str, tool: str, since: float) -> int:
        """Successful calls of `tool` by the customer since `since`."""
        rows = self._query(
            "SELECT COUNT(*) FROM policy_calls WHERE tenant=? AND customer_id=? AND tool=? "
            "AND at>=?",
            (tenant, customer_id, tool, since),
        )
        return int(rows[0][0])

    async def record(self, tenant: str, customer_id: str, tool: str, at: float) -> None:
        """Count one successful call (and forget those older than a week)."""
        with self.tx() as db:
            db.execute("INSERT INTO policy_calls VALUES (?,?,?,?)", (tenant, customer_id, tool, at))
            db.execute("DELETE FROM policy_calls WHERE at < ?", (at - 7 * 86400,))

    # --- housekeeping ------------------------------------------------------------------------

    def has_curated(self, tenant: str) -> bool:
        """Whether the tenant has any curated answer."""
        return bool(self._query("SELECT 1 FROM curated WHERE tenant=? LIMIT 1", (tenant,)))

    def expire(self, tenant: str, now: float, idle_days: float | None) -> list[str]:
        """Housekeeping: drop expired console tokens and de-duplication records older than a
        day and, with `idle_days`, the conversations idle that long (with their events,
        tickets, review items); the ids of the conversations deleted."""
        with self.tx() as db:
            db.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM dedupe WHERE created_at < ?", (now - 86400,))
            db.execute("DELETE FROM console_events WHERE ts < ?", (now - 7 * 86400,))
            if idle_days is None:
                return []
            cutoff = now - idle_days * 86400
            ids = [
                str(r[0])
                for r in db.execute(
                    "SELECT id FROM conversations WHERE tenant=? AND updated_at < ?",
                    (tenant, cutoff),
                ).fetchall()
            ]
            for i in range(0, len(ids), 500):
                batch = ids[i : i + 500]
                marks = ",".join("?" * len(batch))
                for table, column in (
                    ("events", "conversation_id"),
                    ("tickets", "conversation_id"),
                    ("review", "conversation_id"),
                    ("conversations", "id"),
                ):
                    db.execute(
                        f"DELETE FROM {table} WHERE tenant=? AND {column} IN ({marks})",
                        (tenant, *batch),
                    )
        return ids

    def clear_conversations(self, tenant: str) -> int:
        """Delete the tenant's conversations with their events, tickets, review items, channel
        de-duplication and call counts (curated answers and accounts stay); how many
        conversations."""
        with self.tx() as db:
            n = db.execute("DELETE FROM conversations WHERE tenant=?", (tenant,)).rowcount
            for table in ("events", "tickets", "review", "dedupe", "policy_calls"):
                db.execute(f"DELETE FROM {table} WHERE tenant=?", (tenant,))
            db.execute("DELETE FROM console_events WHERE tenant=?", (tenant,))
        return int(n)
