"""`ConversationLog`: conversations, their states and the event log every channel reads."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from glm_agent.exceptions import NotFoundError, PermissionDeniedError
from glm_agent.memory import ConversationMemory, SessionMetadata, SessionStore, SQLiteStore
from glm_agent.messages import AssistantMessage, Message, SystemMessage, ToolCall, map_content_text
from glm_agent.serving.bot._config import SupportConfig
from glm_agent.serving.bot._db import BotDB, Conversation
from glm_agent.serving.bot._notify import Notifier
from glm_agent.serving.bot._throttle import AddressLimiter, LoginThrottle
from glm_agent.serving.bot.curated import CuratedAnswer, CuratedMatcher
from glm_agent.serving.bot.redaction import Redactor

__all__ = ["HUMAN_STATES", "ConversationLog", "Emit", "hash_token"]

log = logging.getLogger("glm_agent.support")

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Deliver = Callable[[Conversation, str], Awaitable[None]]
HUMAN_STATES = ("waiting_human", "with_human")


def hash_token(token: str) -> str:
    """The stored form of a random bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


class ConversationLog:
    """Conversations and their event log (see `SupportBot` for the arguments)."""

    def __init__(
        self,
        agent: Any,
        config: SupportConfig | None = None,
        *,
        base_dir: str | Path = ".",
        store: SessionStore | None = None,
    ) -> None:
        self.agent = agent
        self.config = config = config or SupportConfig()
        self.tenant = config.tenant
        self.base_dir = Path(base_dir)
        self.db = BotDB(config.database_path(self.base_dir))
        if store is None:
            store = agent.memory
        if store is None:
            path = config.database_path(self.base_dir)
            store = SQLiteStore(str(path.with_name(path.stem + "-sessions.db")))
        self.store: SessionStore = store
        r = config.redaction
        self.redactor = Redactor(r.kinds, r.style, {k: list(v) for k, v in r.fields.items()})
        # The one memory path: the agent loads and stores every turn of a conversation through
        # this memory, which redacts what it stores; the bot stores its own turns (curated
        # answers, messages for humans) through it too.
        self.memory = ConversationMemory(
            store, agent.context_window(), tenant=self.tenant, redact=self._redact_message
        )
        agent.conversation = self.memory
        # Per-customer tool limits are counted in the bot's database, so every worker sees them.
        agent.policy_state = self.db
        self.matcher = CuratedMatcher()
        self.notifier = Notifier()
        self.deliverers: dict[str, Deliver] = {}
        """Outbound senders by channel (Feishu, webhook callbacks): called with bot and human
        messages that the channel cannot receive in its own HTTP response."""
        # Weak: a conversation's lock lives while someone holds or waits on it, no longer.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.heartbeat = 15.0
        """Seconds between keep-alive comments on quiet event streams."""
        self._pending_args: dict[str, dict[str, Any]] = {}
        """Real arguments of calls waiting for a customer's "yes", by conversation (never
        written anywhere: the database keeps them redacted)."""
        self.login_throttle = LoginThrottle()
        """Failed console logins, per username and address (per worker process)."""
        lim = config.limits
        self.conversation_limiter = AddressLimiter(lim.conversations_per_minute, lim.burst)
        self.message_limiter = AddressLimiter(lim.messages_per_minute, lim.burst)
        self._housekept = 0.0
        self.reload_curated()

    # --- conversations -----------------------------------------------------------------------

    def reload_curated(self) -> None:
        """Rebuild the curated-answer matcher from the database."""
        self.matcher.set(
            [
                CuratedAnswer(r["id"], r["question"], r["answer"], r["variants"])
                for r in self.db.curated(self.tenant)
            ]
        )

    async def housekeeping(self, *, force: bool = False) -> list[str]:
        """Apply the retention settings (at most hourly unless `force`): expired console tokens,
        old de-duplication records and, with `retention_days`, idle conversations and their
        agent sessions are deleted; the ids of the conversations deleted."""
        now = time.time()
        if not force and now - self._housekept < 3600:
            return []
        self._housekept = now
        ids = self.db.expire(self.tenant, now, self.config.retention_days)
        for conversation_id in ids:
            await self.store.delete(self.tenant, conversation_id)
            self._pending_args.pop(conversation_id, None)
        if ids:
            log.info("retention: deleted %d idle conversation(s)", len(ids))
        return ids

    async def create_conversation(
        self,
        channel: str = "web",
        customer_id: str | None = None,
        locale: str | None = None,
        *,
        verified: bool = False,
    ) -> tuple[Conversation, str, str]:
        """A new conversation: (row, customer token shown once, greeting).

        Args:
            channel: Where it happens (`web`, `webhook`, `feishu`, `api`, `cli`).
            customer_id: The channel's id of the customer (a webhook's customer id, a Feishu
                open id, an API session).
            locale: `zh` or `en` (default: the language of the first message).
            verified: The channel vouches that `customer_id` is the business's customer (a
                signed webhook configured as trusted): the conversation starts verified.
        """
        await self.housekeeping()
        token = secrets.token_urlsafe(24)
        now = time.time()
        conv = Conversation(
            self.tenant,
            "c_" + secrets.token_hex(10),
            hash_token(token),
            channel,
            customer_id,
            locale,
            "bot",
            now,
            now,
            None,
            None,
            0,
            None,
            {},
        )
        if verified and customer_id is not None:
            conv.verified_customer, conv.verified_by = customer_id, f"channel:{channel}"
        self.db.create_conversation(conv)
        if conv.verified_customer is not None:
            self.db.update(
                self.tenant,
                conv.id,
                verified_customer=conv.verified_customer,
                verified_by=conv.verified_by,
            )
        greeting = self.config.greeting.get(locale or "zh") or next(
            iter(self.config.greeting.values()), ""
        )
        await self.store.set_metadata(
            self.tenant, conv.id, SessionMetadata(customer_id=customer_id, channel=channel)
        )
        if greeting:
            await self.publish(conv, self._message("bot", greeting, "system"))
        return conv, token, greeting

    def conversation(self, conversation_id: str, token: str | None = None) -> Conversation:
        """This tenant's conversation; with `token`, only when it is the customer's token."""
        conv = self.db.conversation(self.tenant, conversation_id)
        if conv is None:
            raise NotFoundError(
                f"no conversation {conversation_id!r}", code="conversation_not_found"
            )
        if token is not None and not secrets.compare_digest(conv.token_hash, hash_token(token)):
            raise PermissionDeniedError("wrong or missing X-Customer-Token", code="forbidden")
        return conv

    def verify(self, conv: Conversation, customer_id: str, verified_by: str) -> None:
        """Record that the conversation acts for `customer_id` (a channel vouched for it, or a
        verification tool established it). Never called with anything a model or a customer
        typed."""
        conv.verified_customer, conv.verified_by = customer_id, verified_by
        self.db.update(self.tenant, conv.id, verified_customer=customer_id, verified_by=verified_by)
        self.console_event("verified", conv, customer_id=customer_id, by=verified_by)

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        return lock

    def _t(self, conv: Conversation, zh: str, en: str) -> str:
        """The sentence in the conversation's language (that of the customer's last message)."""
        return en if conv.locale == "en" else zh

    @staticmethod
    def _message(role: str, text: str, source: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": "message",
            "role": role,
            "text": text,
            "source": source,
            "ts": time.time(),
            **extra,
        }

    # --- the event log -----------------------------------------------------------------------

    async def publish(
        self,
        conv: Conversation,
        event: dict[str, Any],
        out: Emit | None = None,
        *,
        deliver: bool = False,
    ) -> int:
        """Persist `event` (message texts redacted), wake the conversation's streams, hand it to
        `out`, and send bot / human messages to channels without a synchronous reply."""
        raw = event.get("text")
        if isinstance(raw, str):
            event["text"] = self.redactor.redact(raw, "transcript")
        seq = self.db.add_event(self.tenant, conv.id, event)
        event["seq"] = seq
        self.notifier.notify(conv.id)
        if out is not None:
            await out(event)
        if event["type"] == "message" and event["role"] != "customer" and isinstance(raw, str):
            sender = self.deliverers.get(conv.channel)
            if sender is not None and (deliver or conv.channel != "webhook"):
                try:
                    await sender(conv, raw)
                except Exception:  # a channel outage must not break the conversation
                    log.exception("delivery to %s failed for %s", conv.channel, conv.id)
        return seq

    def console_event(self, kind: str, conv: Conversation, **data: Any) -> None:
        """Add an event to the console's live feed (never shown to customers: internal detail
        such as why a tool failed goes here)."""
        self.db.add_console_event(self.tenant, {"type": kind, "conversation_id": conv.id, **data})
        self.notifier.notify("console:" + self.tenant)

    async def events_after(
        self, conversation_id: str, after: int, timeout: float = 15.0
    ) -> list[tuple[int, dict[str, Any]]]:
        """Events after `after`, waiting up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.notifier.event(conversation_id)
            rows = self.db.events(self.tenant, conversation_id, after)
            left = deadline - time.monotonic()
            if rows or left <= 0:
                return rows
            await self.notifier.wait(ev, min(left, 1.0))

    # --- the message pipeline ----------------------------------------------------------------

    def _r(self, text: str) -> str:
        return self.redactor.redact(text, "transcript")

    def _redact_message(self, m: Message) -> Message:
        if isinstance(m, AssistantMessage):
            calls = tuple(
                ToolCall(id=c.id, name=c.name, arguments=self._r(c.arguments)) for c in m.tool_calls
            )
            return m.model_copy(
                update={"content": self._r(m.content or "") or None, "tool_calls": calls}
            )
        if isinstance(m, SystemMessage):
            return m.model_copy(update={"content": self._r(m.content)})
        # Text parts are masked; images are kept as they are (by reference once stored).
        return m.model_copy(update={"content": map_content_text(m.content, self._r)})

    def _tag(self, conv: Conversation, **tags: Any) -> None:
        conv.tags.update(tags)
        self.db.update(self.tenant, conv.id, tags=conv.tags)

    async def set_status(
        self, conv: Conversation, status: str, out: Emit | None = None, *, agent: str | None = None
    ) -> None:
        """Move a conversation to `status` and tell its streams and the memory store (`agent`:
        the human agent serving it, shown by the widget)."""
        extra: dict[str, Any] = {"status": status}
        if status == "waiting_human":
            extra["waiting_since"] = time.time()
        if status == "bot":
            extra.update(assigned_to=None, failures=0, waiting_since=None)
        self.db.update(self.tenant, conv.id, **extra)
        conv.status = status
        stored = {"bot": "bot", "closed": "closed"}.get(status, "handed_off")
        await self.store.set_metadata(self.tenant, conv.id, SessionMetadata(status=stored))  # type: ignore[arg-type]
        event: dict[str, Any] = {"type": "status", "status": status, "ts": time.time()}
        if agent is not None:
            event["agent"] = agent
        await self.publish(conv, event, out)

    def transcript_pairs(self, conv: Conversation) -> list[tuple[str, str]]:
        """(role, text) of the conversation's messages."""
        return [
            (e["role"], e["text"]) for _, e in self.db.events(self.tenant, conv.id, 0, "message")
        ]
