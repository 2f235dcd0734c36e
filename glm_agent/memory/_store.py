"""The interfaces every store implements: `SessionStore` (sessions) and `FactStore` (long-term
facts). Input checks and (de)serialisation live here, once; a backend implements a few small
primitives over stored text."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from glm_agent.exceptions import UserError
from glm_agent.media import ImageInfo, MediaLimits, check_image
from glm_agent.memory._session import (
    Session,
    SessionInfo,
    SessionMetadata,
    SessionStatus,
    StoredFact,
    Summary,
    check_id,
    check_status,
    dump_messages,
    load_messages,
    metadata_from_row,
    now,
)
from glm_agent.messages import Message

__all__ = ["SESSION_COLUMNS", "FactStore", "SessionRecord", "SessionStore"]


@dataclass(frozen=True)
class SessionRecord:
    """A session's row as a backend stores it; `SessionStore` turns it into a `SessionInfo`."""

    tenant: str
    session_id: str
    version: int
    customer_id: str | None
    channel: str | None
    status: str
    data: str | dict[str, Any]
    """Application data, as JSON text or already decoded."""
    created_at: float
    updated_at: float
    expires_at: float | None
    summary: str | None = None
    summary_covered: int | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> SessionRecord:
        """A record from a SQL row in `SESSION_COLUMNS` order."""
        return cls(*row[:12])

    def info(self) -> SessionInfo:
        """The session without its messages."""
        return SessionInfo(
            tenant=self.tenant,
            session_id=self.session_id,
            version=self.version,
            metadata=metadata_from_row(self.customer_id, self.channel, self.status, self.data),
            created_at=self.created_at,
            updated_at=self.updated_at,
            expires_at=self.expires_at,
        )


SESSION_COLUMNS = (
    "tenant, session_id, version, customer_id, channel, status, data, "
    "created_at, updated_at, expires_at, summary, summary_covered"
)
"""The columns of a session row, in `SessionRecord` order (the SQL stores share the layout)."""


class SessionStore(abc.ABC):
    """Where sessions live: append / load / list / delete, scoped by tenant.

    Every method is async. Appends are atomic: one `append` is one turn that is either stored whole
    or not at all, and concurrent appends to one session are serialised (none is lost, none
    interleaves with another). Open one with `open_store(url)`; close it with `aclose()` or
    `async with`.

    The public methods check their input and (de)serialise here, once for every backend; a
    backend implements six small primitives over stored text (`write`, `read`, `query`, `remove`,
    `write_summary`, `purge`) and `aclose`, as an httpx transport implements one request method;
    and, to keep images, `write_media` / `read_media` (the SQLite, Redis and PostgreSQL stores
    do).

    Images are kept by reference: `put_media` stores one with its session (deleted and expired
    with it) under its sha256, and messages carry `media:<sha256>` instead of its bytes, so a
    session's history stays small however many photos it holds.
    """

    #: The URL scheme this store answers to.
    scheme: str = ""
    #: Seconds a session lives after its last write (None: forever).
    ttl: float | None = None
    #: What `put_media` takes (size, types); a store URL's `max_media_bytes` sets the size.
    media_limits: MediaLimits = MediaLimits()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the public interface ----------------------------------------------------------------

    async def append(
        self,
        tenant: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        metadata: SessionMetadata | None = None,
    ) -> int:
        """Append one turn (a group of messages) to a session, creating it if needed.

        Args:
            tenant: The tenant the session belongs to.
            session_id: The session's id within the tenant.
            messages: The turn: a user message, tool calls and their results, the answer...
            expected_version: When given, append only if the session is still at this version
                (0 for a session that does not exist yet); otherwise raise `SessionConflictError`.
            metadata: Metadata fields to set at the same time (only those set explicitly).

        Returns:
            The session's new version.
        """
        check_id("tenant", tenant)
        check_id("session_id", session_id)
        return await self.write(
            tenant, session_id, dump_messages(messages), expected_version, metadata
        )

    async def set_metadata(self, tenant: str, session_id: str, metadata: SessionMetadata) -> None:
        """Set the fields `metadata` sets explicitly; creates an empty session if needed."""
        check_id("tenant", tenant)
        check_id("session_id", session_id)
        await self.write(tenant, session_id, None, None, metadata)

    async def load(self, tenant: str, session_id: str) -> Session | None:
        """The session with all its messages, or None when it does not exist or has expired."""
        found = await self.read(tenant, session_id)
        if found is None:
            return None
        record, turns = found
        messages: list[Message] = []
        sizes: list[int] = []
        for payload in turns:
            turn = load_messages(payload)
            messages.extend(turn)
            sizes.append(len(turn))
        summary = None
        if record.summary is not None:
            summary = Summary(text=record.summary, covered=record.summary_covered or 0)
        return Session(**dict(record.info()), messages=messages, turns=sizes, summary=summary)

    async def list_sessions(
        self,
        tenant: str,
        *,
        customer_id: str | None = None,
        status: SessionStatus | None = None,
        limit: int = 100,
    ) -> list[SessionInfo]:
        """The tenant's live sessions, most recently updated first, optionally filtered."""
        if status is not None:
            check_status(status)
        return [r.info() for r in await self.query(tenant, customer_id, status, limit)]

    async def delete(self, tenant: str, session_id: str) -> bool:
        """Delete a session; True when there was one."""
        return await self.remove(tenant, session_id)

    async def delete_customer(self, tenant: str, customer_id: str) -> int:
        """Delete every session and long-term fact of one customer; the number of sessions."""
        count = 0
        for record in await self.query(tenant, customer_id, None, None):
            count += await self.remove(tenant, record.session_id)
        if isinstance(self, FactStore):
            await self.delete_facts(tenant, customer_id)
        return count

    async def set_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        """Store the session's rolling summary; False when the session does not exist."""
        return await self.write_summary(tenant, session_id, summary)

    async def purge_expired(self) -> int:
        """Delete expired sessions now (reads already hide them); how many were deleted."""
        return await self.purge()

    async def put_media(self, tenant: str, session_id: str, data: bytes) -> ImageInfo:
        """Keep an image with a session (the same bytes are kept once); refer to it in messages
        as `media_ref(info.sha256)`. It is deleted, and expires, with the session.

        Raises:
            MediaError: the bytes are not an image `media_limits` takes (too large, of another
                type, unreadable).
        """
        check_id("tenant", tenant)
        check_id("session_id", session_id)
        info = check_image(data, self.media_limits)
        await self.write_media(tenant, session_id, info.sha256, info.mime, data)
        return info

    async def get_media(
        self, tenant: str, session_id: str, media_id: str
    ) -> tuple[str, bytes] | None:
        """An image kept with a live session: (MIME type, bytes); None when there is none."""
        check_id("tenant", tenant)
        check_id("session_id", session_id)
        return await self.read_media(tenant, session_id, media_id)

    # --- what a backend implements -----------------------------------------------------------

    @abc.abstractmethod
    async def write(
        self,
        tenant: str,
        session_id: str,
        turn: str | None,
        expected_version: int | None,
        metadata: SessionMetadata | None,
    ) -> int:
        """Atomically: create the session if missing (or expired), check `expected_version`
        (`SessionConflictError`), apply `metadata`, append `turn` (a JSON array of messages;
        None: metadata only, the version stays), refresh `updated_at` and the expiry. Returns
        the session's version after the write."""

    @abc.abstractmethod
    async def read(self, tenant: str, session_id: str) -> tuple[SessionRecord, list[str]] | None:
        """A live session's record and its turns (JSON text), from one snapshot; or None."""

    @abc.abstractmethod
    async def query(
        self, tenant: str, customer_id: str | None, status: str | None, limit: int | None
    ) -> list[SessionRecord]:
        """Live sessions of the tenant, filtered, most recently updated first (ties by id);
        at most `limit` (None: all)."""

    @abc.abstractmethod
    async def remove(self, tenant: str, session_id: str) -> bool:
        """Delete one session with its turns; True when there was one."""

    @abc.abstractmethod
    async def write_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        """Set (None: clear) a live session's summary; False when there is no such session."""

    @abc.abstractmethod
    async def purge(self) -> int:
        """Delete the expired sessions; how many."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close connections and pools (the store cannot be used afterwards)."""

    async def write_media(
        self, tenant: str, session_id: str, media_id: str, mime: str, data: bytes
    ) -> None:
        """Keep an image with a session, unless one with that id is kept already."""
        raise UserError(
            f"{type(self).__name__} keeps no images; use the SQLite, Redis or PostgreSQL store"
        )

    async def read_media(
        self, tenant: str, session_id: str, media_id: str
    ) -> tuple[str, bytes] | None:
        """A live session's image (MIME type, bytes), or None."""
        return None


class FactStore(abc.ABC):
    """Long-term facts of customers (for `LongTermMemory`), beside their sessions.

    The SQLite, Redis and PostgreSQL stores are both a `SessionStore` and a `FactStore`, so
    `delete_customer` erases a customer's facts with their sessions.
    """

    async def add_fact(self, tenant: str, customer_id: str, text: str, vector: bytes) -> StoredFact:
        """Store a long-term fact of a customer; an identical text is stored only once.

        Returns:
            The stored fact (the earlier one when the text was already there).
        """
        check_id("tenant", tenant)
        check_id("customer_id", customer_id)
        return await self.insert_fact(
            tenant,
            customer_id,
            StoredFact(id=uuid.uuid4().hex, text=text, vector=vector, created_at=now()),
        )

    @abc.abstractmethod
    async def insert_fact(self, tenant: str, customer_id: str, fact: StoredFact) -> StoredFact:
        """Store `fact` unless the customer has one with the same text; the stored one."""

    @abc.abstractmethod
    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        """Every long-term fact of a customer, oldest first."""

    @abc.abstractmethod
    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        """Delete one long-term fact; True when there was one."""

    @abc.abstractmethod
    async def delete_facts(self, tenant: str, customer_id: str) -> int:
        """Delete every fact of a customer; how many."""
