"""`ConversationMemory`: a store and a context window joined for one agent's runs.

```python
memory = ConversationMemory("sqlite:///bot.db", ContextWindow(8192, 1024, count, summarize))
ctx = await memory.prepare("customer-17", system_prompt, [UserMessage(content=question)])
...  # the tool-calling loop runs on ctx.messages and produces this turn's messages
await memory.commit("customer-17", turn, expected_version=ctx.version)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from glm_agent.memory._open import open_store
from glm_agent.memory._session import Session, SessionMetadata, SessionStore
from glm_agent.memory.context import ContextResult, ContextWindow
from glm_agent.messages import Message

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
    """

    def __init__(
        self, store: SessionStore | str, window: ContextWindow, *, tenant: str = "default"
    ) -> None:
        self._owns_store = isinstance(store, str)
        self.store = open_store(store) if isinstance(store, str) else store
        self.window = window
        self.tenant = tenant

    async def prepare(
        self,
        session_id: str,
        system: str | None,
        new: Sequence[Message],
        *,
        tenant: str | None = None,
    ) -> PreparedContext:
        """The context for a new turn of `session_id`; stores a refreshed summary on the way.

        Raises:
            ContextLengthError: the system prompt and `new` alone do not fit.
        """
        tenant = tenant or self.tenant
        session = await self.store.load(tenant, session_id)
        ctx = await self.window.build(
            system,
            session.messages if session else [],
            new,
            session.summary if session else None,
        )
        if ctx.summary_changed and session is not None:
            await self.store.set_summary(tenant, session_id, ctx.summary)
        return PreparedContext(
            messages=ctx.messages,
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
            expected_version: `PreparedContext.version` to refuse a turn made on a stale history
                (`SessionConflictError`), or None to append whatever happened meanwhile.
            metadata: Metadata fields to set with the turn.
            tenant: The tenant, if not the memory's own.

        Returns:
            The session's new version.
        """
        return await self.store.append(
            tenant or self.tenant,
            session_id,
            turn,
            expected_version=expected_version,
            metadata=metadata,
        )

    async def aclose(self) -> None:
        """Close the store if this memory opened it from a URL."""
        if self._owns_store:
            await self.store.aclose()
