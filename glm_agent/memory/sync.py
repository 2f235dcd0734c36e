"""`SyncSessionStore`: the async stores for sync code (scripts, the CLI, sync web frameworks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from glm_agent.memory._open import open_store
from glm_agent.memory._session import (
    Session,
    SessionInfo,
    SessionMetadata,
    SessionStatus,
    SessionStore,
    Summary,
)
from glm_agent.messages import Message

__all__ = ["SyncSessionStore"]

T = TypeVar("T")


class SyncSessionStore:
    """A session store with blocking methods, run on a private event loop in a helper thread.

    The store's connections belong to that loop, so the facade is safe from any thread, also from
    inside a running event loop. Close it with `close()` or `with`.

    Args:
        store: A store URL (`sqlite:///bot.db`...) or a `SessionStore` not used by another loop yet.
    """

    def __init__(self, store: str | SessionStore) -> None:
        self.store = open_store(store) if isinstance(store, str) else store
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="glm-session-store", daemon=True
        )
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> SyncSessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(
        self,
        tenant: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        metadata: SessionMetadata | None = None,
    ) -> int:
        """See `SessionStore.append`."""
        return self._call(
            self.store.append(
                tenant, session_id, messages, expected_version=expected_version, metadata=metadata
            )
        )

    def load(self, tenant: str, session_id: str) -> Session | None:
        """See `SessionStore.load`."""
        return self._call(self.store.load(tenant, session_id))

    def list_sessions(
        self,
        tenant: str,
        *,
        customer_id: str | None = None,
        status: SessionStatus | None = None,
        limit: int = 100,
    ) -> list[SessionInfo]:
        """See `SessionStore.list_sessions`."""
        return self._call(
            self.store.list_sessions(tenant, customer_id=customer_id, status=status, limit=limit)
        )

    def delete(self, tenant: str, session_id: str) -> bool:
        """See `SessionStore.delete`."""
        return self._call(self.store.delete(tenant, session_id))

    def delete_customer(self, tenant: str, customer_id: str) -> int:
        """See `SessionStore.delete_customer`."""
        return self._call(self.store.delete_customer(tenant, customer_id))

    def set_metadata(self, tenant: str, session_id: str, metadata: SessionMetadata) -> None:
        """See `SessionStore.set_metadata`."""
        self._call(self.store.set_metadata(tenant, session_id, metadata))

    def set_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        """See `SessionStore.set_summary`."""
        return self._call(self.store.set_summary(tenant, session_id, summary))

    def purge_expired(self) -> int:
        """See `SessionStore.purge_expired`."""
        return self._call(self.store.purge_expired())

    def close(self) -> None:
        """Close the store and stop the helper thread."""
        if self._loop.is_closed():
            return
        try:
            self._call(self.store.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
