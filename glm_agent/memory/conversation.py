"""`ConversationMemory`: the one component that builds what the model sees for a session.

A store and a context window joined: `prepare` loads the session and fits it to the model's
budget (newest turns verbatim, older ones in a rolling summary that is stored with the session),
then `commit` appends the finished turn in one atomic write. The agent uses it for every run with
a `session_id`, and so does every door that reaches an agent (the HTTP API, the support bot, the
CLI): none of them loads or stores a session's messages itself.

```python
memory = ConversationMemory("sqlite:///bot.db", ContextWindow(8192, 1024, count, summarize))
ctx = await memory.prepare("customer-17", system_prompt, [UserMessage(content=question)])
...  # the tool-calling loop runs on ctx.messages and produces this turn's messages
await memory.commit("customer-17", turn, expected_version=ctx.version)
```

Images are kept by reference: `commit` stores each `data:` image of the turn with the session
(`SessionStore.put_media`) and writes `media:<sha256>` in its place; `prepare` puts the bytes back
only into the messages that go to the model this turn, so loading a session never copies its
photos, and history that no longer fits takes its images with it.

Concurrency is optimistic: `commit` passes the version `prepare` saw. When another run appended
meanwhile, `conflicts="append"` (the default) stores the turn after it, so no acknowledged turn is
ever lost and turns never interleave; `conflicts="raise"` raises `SessionConflictError` instead,
for callers that would rather redo the turn on the fresh history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from glm_agent import tracing
from glm_agent.exceptions import SessionConflictError
from glm_agent.media import media_ref, parse_data_url, ref_digest, to_data_url
from glm_agent.memory._open import open_store
from glm_agent.memory._session import Session, SessionMetadata
from glm_agent.memory._store import SessionStore
from glm_agent.memory.context import ContextResult, ContextWindow
from glm_agent.messages import ImagePart, ImageURL, Message, TextPart, ToolMessage, UserMessage

GONE = "(an image the customer sent earlier, no longer kept)"
"""What the model reads in place of an image whose session copy is gone (deleted, expired)."""

__all__ = ["ConversationMemory", "PreparedContext"]


@dataclass(frozen=True)
class PreparedContext:
    """What `ConversationMemory.prepare` returns."""

    messages: list[Message]
    """The messages to send to the model."""
    version: int
    """The session's version when loaded (0 for a new one): pass it to `commit`."""
    session: Session | None
    """The session as loaded (None for a new one)."""
    context: ContextResult
    """The window's full result (tokens, what was dropped or summarised)."""


class ConversationMemory:
    """Loads a session into the model's context and stores each finished turn.

    Args:
        store: A `SessionStore`, or a store URL (opened here and closed by `aclose`).
        window: The context window (budget, token count, summariser).
        tenant: The tenant of the sessions, unless a call names another.
        redact: Applied to every message before it is stored (the model of the current turn
            still sees it whole); the support bot masks personal data with it.
        conflicts: What `commit` does when the session changed since `prepare`: `append` the
            turn after the other one, or `raise` `SessionConflictError`.
    """

    def __init__(
        self,
        store: SessionStore | str,
        window: ContextWindow,
        *,
        tenant: str = "default",
        redact: Callable[[Message], Message] | None = None,
        conflicts: Literal["append", "raise"] = "append",
    ) -> None:
        self._owns_store = isinstance(store, str)
        self.store = open_store(store) if isinstance(store, str) else store
        self.window = window
        self.tenant = tenant
        self.redact = redact
        self.conflicts = conflicts

    async def prepare(
        self,
        session_id: str,
        system: str | None,
        new: Sequence[Message],
        *,
        tenant: str | None = None,
        extra_tokens: int = 0,
    ) -> PreparedContext:
        """The context for a new turn of `session_id`; stores a refreshed summary on the way.

        Args:
            session_id: The session.
            system: The system prompt, or None.
            new: This turn's messages (retrieved passages, the user's message).
            tenant: The tenant, if not the memory's own.
            extra_tokens: Tokens the rest of the prompt takes (the tool definitions).

        Raises:
            ContextLengthError: the system prompt and `new` alone do not fit.
        """
        tenant = tenant or self.tenant
        attributes = {"gen_ai.conversation.id": session_id, "glm_agent.tenant": tenant}
        with tracing.span("memory load", attributes) as span:
            session = await self.store.load(tenant, session_id)
            ctx = await self.window.build(
                system,
                session.messages if session else [],
                new,
                session.summary if session else None,
                extra_tokens=extra_tokens,
            )
            if ctx.summary_changed and session is not None:
                await self.store.set_summary(tenant, session_id, ctx.summary)
            messages = [await self._with_images(tenant, session_id, m) for m in ctx.messages]
            if span.is_recording():
                stored = len(session.messages) if session else 0
                span.set_attribute("glm_agent.memory.version", session.version if session else 0)
                span.set_attribute("glm_agent.memory.stored", stored)
                span.set_attribute("glm_agent.memory.sent", len(ctx.messages))
                span.set_attribute("glm_agent.memory.tokens", ctx.tokens)
                span.set_attribute("glm_agent.memory.summarized", ctx.summary_changed)
                span.set_attribute("glm_agent.memory.dropped", ctx.dropped)
        return PreparedContext(
            messages=messages,
            version=session.version if session else 0,
            session=session,
            context=ctx,
        )

    async def commit(
        self,
        session_id: str,
        turn: Sequence[Message],
        *,
        expected_version: int | None = None,
        metadata: SessionMetadata | None = None,
        tenant: str | None = None,
    ) -> int:
        """Append a finished turn (the user's messages, tool calls, results, the answer).

        Args:
            session_id: The session.
            turn: The turn's messages, in order.
            expected_version: `PreparedContext.version`; what happens when the session moved on
                since is `conflicts`. None: append whatever happened meanwhile.
            metadata: Metadata fields to set with the turn.
            tenant: The tenant, if not the memory's own.

        Returns:
            The session's new version.
        """
        tenant = tenant or self.tenant
        if self.redact is not None:
            turn = [self.redact(m) for m in turn]
        turn = [await self._by_reference(tenant, session_id, m) for m in turn]
        attributes = {
            "gen_ai.conversation.id": session_id,
            "glm_agent.tenant": tenant,
            "glm_agent.memory.appended": len(turn),
            "glm_agent.memory.expected_version": expected_version,
        }
        with tracing.span("memory append", attributes) as span:
            try:
                version = await self.store.append(
                    tenant, session_id, turn, expected_version=expected_version, metadata=metadata
                )
            except SessionConflictError:
                if self.conflicts == "raise" or expected_version is None:
                    raise
                span.set_attribute("glm_agent.memory.conflict", True)
                version = await self.store.append(tenant, session_id, turn, metadata=metadata)
            span.set_attribute("glm_agent.memory.version", version)
            return version

    async def _by_reference(self, tenant: str, session_id: str, m: Message) -> Message:
        """`m` with its `data:` images kept in the store and referred to as `media:<sha256>`."""
        if not isinstance(m, UserMessage | ToolMessage) or isinstance(m.content, str):
            return m
        if not any(isinstance(p, ImagePart) and p.url.startswith("data:") for p in m.content):
            return m
        parts: list[TextPart | ImagePart | object] = []
        for p in m.content:
            if isinstance(p, ImagePart) and p.url.startswith("data:"):
                info = await self.store.put_media(tenant, session_id, parse_data_url(p.url)[1])
                url = ImageURL(url=media_ref(info.sha256), detail=p.image_url.detail)
                p = ImagePart(image_url=url, width=info.width, height=info.height)
            parts.append(p)
        return m.model_copy(update={"content": tuple(parts)})

    async def _with_images(self, tenant: str, session_id: str, m: Message) -> Message:
        """`m` with its `media:` images as `data:` URLs again (the model needs the bytes)."""
        if not isinstance(m, UserMessage | ToolMessage) or isinstance(m.content, str):
            return m
        if not any(isinstance(p, ImagePart) and ref_digest(p.url) for p in m.content):
            return m
        parts: list[object] = []
        for p in m.content:
            digest = ref_digest(p.url) if isinstance(p, ImagePart) else None
            if digest is not None:
                found = await self.store.get_media(tenant, session_id, digest)
                if found is None:
                    p = TextPart(text=GONE)
                else:
                    assert isinstance(p, ImagePart)
                    url = p.image_url.model_copy(update={"url": to_data_url(*found)})
                    p = p.model_copy(update={"image_url": url})
            parts.append(p)
        return m.model_copy(update={"content": tuple(parts)})

    async def aclose(self) -> None:
        """Close the store if this memory opened it from a URL."""
        if self._owns_store:
            await self.store.aclose()
