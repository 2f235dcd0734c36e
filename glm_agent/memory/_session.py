"""The session model: sessions, their metadata and summaries, long-term facts, and the helpers
every store shares (id checks, the stored JSON form of a turn)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from glm_agent.exceptions import UserError
from glm_agent.messages import Message

__all__ = [
    "Fact",
    "Session",
    "SessionInfo",
    "SessionMetadata",
    "SessionStatus",
    "StoredFact",
    "Summary",
]

SessionStatus = Literal["bot", "handed_off", "closed"]
"""Who is answering: the bot, a human agent after a hand-off, or nobody (closed)."""

SESSION_STATUSES: tuple[str, ...] = ("bot", "handed_off", "closed")

_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])
_MAX_ID = 256


def dump_messages(messages: Sequence[Message]) -> str:
    """Messages as one compact JSON array (the stored form of one turn)."""
    return _MESSAGES.dump_json(list(messages), exclude_none=True).decode()


def load_messages(data: str | bytes) -> list[Message]:
    """The messages of one stored turn."""
    return _MESSAGES.validate_json(data)


def check_id(kind: str, value: str) -> str:
    """`value` if it is a usable tenant / session / customer id, else a `UserError`."""
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise UserError(f"{kind} must be a non-empty string of at most {_MAX_ID} characters")
    if any(ord(c) < 32 for c in value):
        raise UserError(f"{kind} {value!r} contains control characters")
    return value


def check_status(status: str) -> str:
    """`status` if it is a known session status, else a `UserError` listing them."""
    if status not in SESSION_STATUSES:
        raise UserError(
            f"unknown session status {status!r}; statuses: {', '.join(SESSION_STATUSES)}"
        )
    return status


def expiry(ttl: float | None, now: float) -> float | None:
    """When a session touched at `now` expires (None: never)."""
    return None if ttl is None else now + ttl


class Summary(BaseModel):
    """A rolling summary of the oldest messages of a session (made by `ContextWindow`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """The summary, written by the agent's model."""
    covered: int = Field(ge=0)
    """How many leading messages of the session's history the summary stands for."""


class SessionMetadata(BaseModel):
    """What a store keeps about a session besides its messages.

    Given to `SessionStore.append` or `set_metadata`, only the fields set explicitly are written,
    so `SessionMetadata(status="closed")` changes the status and keeps the rest.
    """

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = None
    """The customer the session belongs to (`delete_customer` and long-term memory use it)."""
    channel: str | None = None
    """Where the conversation happens: `web`, `wechat`, `email`, ..."""
    status: SessionStatus = "bot"
    """Who answers: `bot`, `handed_off` (to a human) or `closed`."""
    data: dict[str, Any] = Field(default_factory=dict)
    """Free-form JSON data of the application."""

    def merged(self, update: SessionMetadata | None) -> SessionMetadata:
        """This metadata with the fields `update` sets explicitly replaced."""
        if update is None:
            return self
        return self.model_copy(update=update.model_dump(exclude_unset=True))


class SessionInfo(BaseModel):
    """A session without its messages, as `list_sessions` returns it."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    """The tenant (one company, one bot) the session belongs to."""
    session_id: str
    """The session's id, unique within its tenant."""
    version: int = 0
    """How many appends the session has had; `append` returns the new one."""
    metadata: SessionMetadata = Field(default_factory=SessionMetadata)
    """Customer, channel, status and application data."""
    created_at: float = 0.0
    """Unix time of the first write."""
    updated_at: float = 0.0
    """Unix time of the last write."""
    expires_at: float | None = None
    """Unix time after which the session is gone (None: never)."""


class Session(SessionInfo):
    """A whole session: its metadata, its messages, and the rolling summary of the oldest ones."""

    messages: list[Message] = Field(default_factory=list)
    """Every message ever appended, oldest first (tool calls and results included)."""
    turns: list[int] = Field(default_factory=list)
    """How many messages each append added, in order (`sum(turns) == len(messages)`)."""
    summary: Summary | None = None
    """The rolling summary `ContextWindow` keeps, if any."""


class Fact(BaseModel):
    """A fact of long-term memory, as `LongTermMemory.recall` returns it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The fact's id (pass it to `forget`)."""
    text: str
    """The fact, as it was remembered."""
    score: float = 0.0
    """Cosine similarity to the query (1 is identical)."""
    created_at: float = 0.0
    """Unix time it was remembered."""


class StoredFact(BaseModel):
    """A fact as a store holds it: its text and its embedding as float32 bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The fact's id."""
    text: str
    """The fact."""
    vector: bytes
    """The embedding, little-endian float32."""
    created_at: float
    """Unix time it was remembered."""


def now() -> float:
    """The current Unix time (one place, so backends agree)."""
    return time.time()


def metadata_from_row(
    customer_id: str | None, channel: str | None, status: str, data: str | dict[str, Any]
) -> SessionMetadata:
    """Metadata from a stored row (`data` as JSON text or already decoded)."""
    return SessionMetadata(
        customer_id=customer_id,
        channel=channel,
        status=status,  # type: ignore[arg-type]  # validated by pydantic
        data=json.loads(data) if isinstance(data, str) else data,
    )


def dump_data(data: dict[str, Any]) -> str:
    """Application data as compact JSON."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
