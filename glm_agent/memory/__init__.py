"""Multi-turn memory: session stores, the context window, long-term facts.

```python
from glm_agent.memory import ContextWindow, open_store

store = open_store("sqlite:///bot.db")          # or redis://..., postgresql://...
version = await store.append("acme", "customer-17", [UserMessage(content="hi"), answer])
session = await store.load("acme", "customer-17")
ctx = await ContextWindow(max_tokens=8192, reserve_output=1024).build(
    "You are Acme's assistant.", session.messages, [UserMessage(content="and my order?")]
)
```

This package imports only the shared vocabulary (messages, exceptions, settings); the summariser
and the embedder are passed in as callables.
"""

from glm_agent.memory._open import open_store
from glm_agent.memory._session import (
    Fact,
    Session,
    SessionInfo,
    SessionMetadata,
    SessionStatus,
    StoredFact,
    Summary,
)
from glm_agent.memory._store import FactStore, SessionRecord, SessionStore
from glm_agent.memory.context import (
    ContextResult,
    ContextWindow,
    MediaCounter,
    Summarizer,
    TokenCounter,
    estimate_media_tokens,
    estimate_tokens,
    turn_units,
)
from glm_agent.memory.conversation import ConversationMemory, PreparedContext
from glm_agent.memory.long_term import Embed, LongTermMemory
from glm_agent.memory.postgres_store import PostgresStore
from glm_agent.memory.redis_store import RedisStore
from glm_agent.memory.sqlite_store import SQLiteStore
from glm_agent.memory.sync import SyncSessionStore

__all__ = [
    "ContextResult",
    "ContextWindow",
    "ConversationMemory",
    "Embed",
    "Fact",
    "FactStore",
    "LongTermMemory",
    "MediaCounter",
    "PostgresStore",
    "PreparedContext",
    "RedisStore",
    "SQLiteStore",
    "Session",
    "SessionInfo",
    "SessionMetadata",
    "SessionRecord",
    "SessionStatus",
    "SessionStore",
    "StoredFact",
    "Summarizer",
    "Summary",
    "SyncSessionStore",
    "TokenCounter",
    "estimate_media_tokens",
    "estimate_tokens",
    "open_store",
    "turn_units",
]
