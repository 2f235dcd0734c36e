"""`SyncSessionStore`: the async stores for sync code (scripts, the CLI, sync web frameworks)."""

from __future__ import annotations

from collections.abc import Sequence

from glm_agent._sync_bridge import run_sync
from glm_agent.memory._open import open_store
from glm_agent.memory._session import (
    Session,
    SessionInfo,
    SessionMetadata,
    SessionStatus,
    Summary,
)
from glm_agent.memory._store import SessionStore
from glm_agent.messages import Message

__all__ = ["SyncSessionStore"]


class SyncSessionStore:
    """A session store with blocking methods, run on glm-agent's shared sync bridge.

    The store's connections belong to the bridge's loop, so the facade is safe from any thread,
    also from inside a running event loop. Close it with `close()` or `with`.

    Args:
        store: A store URL (`sqlite:///bot.db`...) or a `SessionStore` not used by another loop yet.
    """

    def __init__(self, store: str | SessionStore) -> None:
        self.store = open_store(store) if isinstance(store, str) else store
        self._closed = False

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
        return run_sync(
            self.store.append(
                tenant, session_id, messages, expected_version=expected_version, metadata=metadata
            )
        )

    def load(self, tenant: str, session_id: str) -> Session | None:
        """See `SessionStore.load`."""
        return run_sync(self.store.load(tenant, session_id))

    def list_sessions(
        self,
        tenant: str,
        *,
        customer_id: str | None = None,
        status: SessionStatus | None = None,
        limit: int = 100,
    ) -> list[SessionInfo]:
        """See `SessionStore.list_sessions`."""
        return run_sync(
            self.store.list_sessions(tenant, customer_id=customer_id, status=status, limit=limit)
        )

    def delete(self, tenant: str, session_id: str) -> bool:
        """See `SessionStore.delete`."""
        return run_sync(self.store.delete(tenant, session_id))

    def delete_customer(self, tenant: str, customer_id: str) -> int:
        """See `SessionStore.delete_customer`."""
        return run_sync(self.store.delete_customer(tenant, customer_id))

    def set_metadata(self, tenant: str, session_id: str, metadata: SessionMetadata) -> None:
        """See `SessionStore.set_metadata`."""
        run_sync(self.store.set_metadata(tenant, session_id, metadata))

    def set_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        """See `SessionStore.set_summary`."""
        return run_sync(self.store.set_summary(tenant, session_id, summary))

    def purge_expired(self) -> int:
        """See `SessionStore.purge_expired`."""
        return run_sync(self.store.purge_expired())

    def close(self) -> None:
        """Close the store (closing twice does nothing)."""
        if not self._closed:
            self._closed = True
            run_sync(self.store.aclose())
