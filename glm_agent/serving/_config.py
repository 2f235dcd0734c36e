"""Server settings and API keys: keys are stored hashed, each bound to a tenant and scopes."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCOPES",
    "ApiKey",
    "KeyRing",
    "RateLimit",
    "ServerConfig",
    "TokenBucket",
    "generate_key",
    "hash_key",
]

Scope = Literal["chat", "runs", "sessions", "knowledge", "identify", "admin"]
SCOPES: tuple[str, ...] = ("chat", "runs", "sessions", "knowledge", "identify", "admin")
"""`identify`: the key's holder (a trusted back end) vouches for customers with the
`X-Customer-Id` header, so support conversations start verified."""
"""`chat`: /v1/models, /v1/chat/completions, /v1/embeddings; `runs`: /v1/agents/*/runs;
`sessions`: /v1/sessions; `knowledge`: upload, re-index and search; `admin`: all of them."""

KEY_PREFIX = "gak_"
_DEFAULT_SCOPES: tuple[Scope, ...] = ("chat", "runs", "sessions")


def generate_key() -> str:
    """A fresh random API key (shown once; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    """The stored form of a key: `sha256:<hex>`.

    A fast hash is enough here because keys are 256-bit random strings, not passwords: no
    dictionary to attack, and verifying one must stay cheap on every request.
    """
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


class RateLimit(BaseModel):
    """A token bucket: `requests_per_minute` refill rate, `burst` capacity."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: float = Field(gt=0)
    """Sustained requests per minute."""
    burst: int | None = Field(default=None, ge=1)
    """Most requests at once after a quiet spell (default: a second's worth, at least 1)."""


class ApiKey(BaseModel):
    """One API key as configured: its hash, tenant, scopes and rate limit."""

    model_config = ConfigDict(extra="forbid")

    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    """`sha256:<hex>` of the raw key (`glm-agent keys create` prints it)."""
    tenant: str = Field(min_length=1, max_length=200)
    """The tenant whose sessions and knowledge the key may use."""
    scopes: list[Scope] = Field(default_factory=lambda: list(_DEFAULT_SCOPES))
    """What the key may call (see `SCOPES`)."""
    name: str = ""
    """A label for logs (the raw key never appears in logs)."""
    rate_limit: RateLimit | None = None
    """Per-key rate limit (None: the server's default)."""

    @property
    def label(self) -> str:
        """How the key appears in logs and metrics: its name or a hash prefix."""
        return self.name or self.hash[7:19]

    def allows(self, scope: str) -> bool:
        """Whether the key has `scope` (or `admin`)."""
        return scope in self.scopes or "admin" in self.scopes


class ServerConfig(BaseModel):
    """Settings of the HTTP server (the `server:` section of an agent.yaml, or its own file)."""

    model_config = ConfigDict(extra="forbid")

    keys: list[ApiKey] = Field(default_factory=list)
    """API keys. With none, the server is open and every request is tenant `default`."""
    keys_file: str | None = None
    """A YAML file with a `keys:` list, read at start (relative to the config file)."""
    rate_limit: RateLimit | None = None
    """Default per-key rate limit."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 over it); uploads get `max_upload_bytes`."""
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """Largest document upload accepted."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS (`*` for any); empty: no CORS headers."""
    models: dict[str, str] = Field(default_factory=dict)
    """Plain models served beside the agents: name → model string."""
    stream_heartbeat: float = Field(default=15.0, gt=0)
    """Seconds between SSE keep-alive comments on a quiet stream."""
    mcp: bool = False
    """Also serve the agents (one tool each) and their knowledge bases (a search tool and
    resources) over MCP's Streamable HTTP at `/mcp`, behind the same keys (scope `runs`)."""

    def load_keys(self, base_dir: Path) -> list[ApiKey]:
        """The configured keys plus those of `keys_file`."""
        keys = list(self.keys)
        if self.keys_file:
            from glm_agent._yaml_source import read_yaml

            data = read_yaml(base_dir / self.keys_file).substitute_env().mapping()
            keys += [ApiKey.model_validate(k) for k in data.get("keys") or []]
        return keys


class TokenBucket:
    """A thread-safe token bucket; `take()` returns 0 or the seconds to wait."""

    def __init__(self, limit: RateLimit) -> None:
        self.rate = limit.requests_per_minute / 60.0
        self.capacity = float(limit.burst or max(1, math.ceil(self.rate)))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Spend one token; 0.0 when allowed, else seconds until one is available."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


class KeyRing:
    """Looks up keys by their hash and keeps their rate-limit buckets."""

    def __init__(self, keys: list[ApiKey], default_limit: RateLimit | None = None) -> None:
        self._by_hash = {k.hash: k for k in keys}
        self._default = default_limit
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def open(self) -> bool:
        """True when no keys are configured (every request is tenant `default`)."""
        return not self._by_hash

    def find(self, raw: str) -> ApiKey | None:
        """The key whose hash matches `raw`, or None."""
        digest = hash_key(raw)
        key = self._by_hash.get(digest)
        # compare_digest keeps the final check constant-time.
        if key is not None and hmac.compare_digest(key.hash, digest):
            return key
        return None

    def wait(self, key: ApiKey, client: str = "") -> float:
        """0.0 when `key` may make a request now, else the seconds until it may.

        Args:
            key: The request's key.
            client: Who is asking when there are no keys (the client address): an open server
                limits each client on its own rather than everyone together.
        """
        limit = key.rate_limit or self._default
        if limit is None:
            return 0.0
        bucket_id = key.hash if not self.open else "client:" + client
        bucket = self._buckets.get(bucket_id)
        if bucket is None:
            if len(self._buckets) > 100_000:  # open servers: forget idle clients, bound memory
                self._buckets.clear()
            bucket = self._buckets.setdefault(bucket_id, TokenBucket(limit))
        return bucket.take()

    def describe(self) -> dict[str, Any]:
        """Counts for /readyz (no hashes)."""
        return {"keys": len(self._by_hash)}
