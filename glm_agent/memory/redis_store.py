"""Sessions in Redis (redis-py's asyncio client; Lua scripts for atomic appends).

Keys, for prefix `P` and tenant `T` (URL-quoted, so it holds no `:`):
`P:T:s:<session>` (hash: version and metadata), `P:T:t:<session>` (list: one JSON turn per append),
`P:T:idx` (sorted set: sessions by last write), `P:T:c:<customer>` (set: a customer's sessions),
`P:T:f:<customer>` (hash: long-term facts), `P:T:m:<session>` (hash: the session's images, by
sha256, each `mime;base64`; it expires and is deleted with the session).

An append is one Lua script: it checks the version, pushes the turn and bumps the version with no
other command in between, so concurrent appends never interleave. Expiry uses Redis's own key TTL.

Durability: an append returns once Redis has applied it in memory, so it survives a crash of the
worker but not of the Redis server unless the server persists: run Redis with
`appendonly yes` and `appendfsync always` for no loss (`everysec`: at most about one second lost),
as `redis-server --appendonly yes --appendfsync always`. Replicas do not make a write durable by
themselves (failover may drop acknowledged writes). The scripts compute key names, so the store
needs a single Redis instance (or one shard), not Redis Cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import quote

from glm_agent.exceptions import MissingDependencyError, SessionConflictError
from glm_agent.memory._session import SessionMetadata, StoredFact, Summary, dump_data, now
from glm_agent.memory._store import FactStore, SessionRecord, SessionStore

__all__ = ["RedisStore"]

# KEYS: session hash, turns list, tenant index, media hash. ARGV: expected version or '', turn
# JSON or '' (metadata only), now, ttl in ms or '', session id, customer-set key prefix, then
# field/value pairs of metadata to set (value '\0' deletes the field).
_APPEND = """
local version = 0
local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists then version = tonumber(redis.call('HGET', KEYS[1], 'version')) end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= version then return {-1, version} end
if not exists then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'version', 0, 'status', 'bot', 'data', '{}', 'created_at', ARGV[3])
end
local old_customer = redis.call('HGET', KEYS[1], 'customer_id')
for i = 7, #ARGV, 2 do
  if ARGV[i + 1] == '\\0' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
local customer = redis.call('HGET', KEYS[1], 'customer_id')
if old_customer and old_customer ~= customer then
  redis.call('SREM', ARGV[6] .. old_customer, ARGV[5])
end
if customer then redis.call('SADD', ARGV[6] .. customer, ARGV[5]) end
if ARGV[2] ~= '' then
  version = version + 1
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[1], 'version', version)
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'expires_at', tonumber(ARGV[3]) + tonumber(ARGV[4]) / 1000)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return {0, version}
"""

# KEYS: session hash, turns list, tenant index, media hash. ARGV: session id, customer-set
# key prefix.
_DELETE = """
local customer = redis.call('HGET', KEYS[1], 'customer_id')
if customer then redis.call('SREM', ARGV[2] .. customer, ARGV[1]) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
return redis.call('DEL', KEYS[1], KEYS[2]) > 0 and 1 or 0
"""

# KEYS: session hash, media hash. ARGV: image id, `mime;base64`. The images live as long as the
# session: they take its remaining time to live (appends renew both).
_MEDIA = """
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""

# KEYS: session hash. ARGV: summary text and covered count, or nothing to clear it.
_SUMMARY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV == 0 then redis.call('HDEL', KEYS[1], 'summary', 'summary_covered')
else redis.call('HSET', KEYS[1], 'summary', ARGV[1], 'summary_covered', ARGV[2]) end
return 1
"""

# KEYS: an index (sorted set) or a customer's set. ARGV: session-key prefix, 'z' or 's', ids.
_PRUNE = """
local n = 0
for i = 3, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 0 then
    if ARGV[2] == 'z' then n = n + redis.call('ZREM', KEYS[1], ARGV[i])
    else n = n + redis.call('SREM', KEYS[1], ARGV[i]) end
  end
end
return n
"""

_NULL = "\0"


def _record(tenant: str, session_id: str, h: dict[str, str]) -> SessionRecord:
    return SessionRecord(
        tenant=tenant,
        session_id=session_id,
        version=int(h.get("version", 0)),
        customer_id=h.get("customer_id"),
        channel=h.get("channel"),
        status=h.get("status", "bot"),
        data=h.get("data", "{}"),
        created_at=float(h.get("created_at", 0.0)),
        updated_at=float(h.get("updated_at", 0.0)),
        expires_at=float(h["expires_at"]) if "expires_at" in h else None,
        summary=h.get("summary"),
        summary_covered=int(h["summary_covered"]) if "summary_covered" in h else None,
    )


class RedisStore(SessionStore, FactStore):
    """Sessions in Redis (`redis://host:6379/0?prefix=glm_agent&ttl=86400`).

    Args:
        url: A redis-py URL (`redis://`, `rediss://`, with password and database).
        ttl: Seconds a session lives after its last write (None: forever).
        prefix: The prefix of every key (tests use a unique one).
    """

    scheme = "redis"

    def __init__(self, url: str, *, ttl: float | None = None, prefix: str = "glm_agent") -> None:
        self.url = url
        self.ttl = ttl
        self.prefix = prefix
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as e:
                raise MissingDependencyError("redis", "memory", "Redis sessions") from e
            self._client = aioredis.Redis.from_url(self.url, decode_responses=True)
            scripts = {
                "append": _APPEND,
                "delete": _DELETE,
                "summary": _SUMMARY,
                "prune": _PRUNE,
                "media": _MEDIA,
            }
            for name, source in scripts.items():
                self._scripts[name] = self._client.register_script(source)
        return self._client

    def _key(self, tenant: str, kind: str, name: str = "") -> str:
        base = f"{self.prefix}:{quote(tenant, safe='')}:{kind}"
        return f"{base}:{name}" if name else base

    def _session_keys(self, tenant: str, session_id: str) -> list[str]:
        return [
            self._key(tenant, "s", session_id),
            self._key(tenant, "t", session_id),
            self._key(tenant, "idx"),
            self._key(tenant, "m", session_id),
        ]

    # --- the store's primitives -------------------------------------------------------------

    async def write(
        self,
        tenant: str,
        session_id: str,
        turn: str | None,
        expected_version: int | None,
        metadata: SessionMetadata | None,
    ) -> int:
        self._redis()
        t = now()
        args: list[str | float] = [
            "" if expected_version is None else str(expected_version),
            turn or "",
            repr(t),
            "" if self.ttl is None else str(int(self.ttl * 1000)),
            session_id,
            self._key(tenant, "c") + ":",
        ]
        for field, value in (metadata.model_dump(exclude_unset=True) if metadata else {}).items():
            if field == "data":
                value = dump_data(value)
            args += [field, _NULL if value is None else str(value)]
        status, version = await self._scripts["append"](
            keys=self._session_keys(tenant, session_id), args=args
        )
        if status < 0:
            raise SessionConflictError(
                tenant, session_id, expected=expected_version or 0, actual=version
            )
        return int(version)

    async def write_media(
        self, tenant: str, session_id: str, media_id: str, mime: str, data: bytes
    ) -> None:
        self._redis()
        value = f"{mime};{base64.b64encode(data).decode()}"
        keys = [self._key(tenant, "s", session_id), self._key(tenant, "m", session_id)]
        await self._scripts["media"](keys=keys, args=[media_id, value])

    async def read_media(
        self, tenant: str, session_id: str, media_id: str
    ) -> tuple[str, bytes] | None:
        keys = [self._key(tenant, "s", session_id), self._key(tenant, "m", session_id)]
        async with self._redis().pipeline(transaction=True) as pipe:
            live, raw = await pipe.exists(keys[0]).hget(keys[1], media_id).execute()
        if not live or raw is None:
            return None
        mime, _, data = str(raw).partition(";")
        return mime, base64.b64decode(data)

    async def read(self, tenant: str, session_id: str) -> tuple[SessionRecord, list[str]] | None:
        keys = self._session_keys(tenant, session_id)
        async with self._redis().pipeline(transaction=True) as pipe:
            h, turns = await pipe.hgetall(keys[0]).lrange(keys[1], 0, -1).execute()
        if not h:
            return None
        return _record(tenant, session_id, h), list(turns)

    async def query(
        self, tenant: str, customer_id: str | None, status: str | None, limit: int | None
    ) -> list[SessionRecord]:
        r = self._redis()
        idx = self._key(tenant, "idx")
        if customer_id is not None:
            ids = sorted(await r.smembers(self._key(tenant, "c", customer_id)))
        else:
            ids = await r.zrevrange(idx, 0, -1)
        out: list[SessionRecord] = []
        stale: list[str] = []
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            async with r.pipeline(transaction=False) as pipe:
                for sid in batch:
                    pipe.hgetall(self._key(tenant, "s", sid))
                rows = await pipe.execute()
            for sid, h in zip(batch, rows, strict=True):
                if not h:
                    stale.append(sid)  # expired: its index entry outlived it
                    continue
                record = _record(tenant, sid, h)
                if status is None or record.status == status:
                    out.append(record)
        if stale and customer_id is None:
            await r.zrem(idx, *stale)
        out.sort(key=lambda i: (-i.updated_at, i.session_id))
        return out if limit is None else out[:limit]

    async def remove(self, tenant: str, session_id: str) -> bool:
        self._redis()
        deleted = await self._scripts["delete"](
            keys=self._session_keys(tenant, session_id),
            args=[session_id, self._key(tenant, "c") + ":"],
        )
        return bool(deleted)

    async def write_summary(self, tenant: str, session_id: str, summary: Summary | None) -> bool:
        self._redis()
        args = [] if summary is None else [summary.text, str(summary.covered)]
        done = await self._scripts["summary"](keys=[self._key(tenant, "s", session_id)], args=args)
        return bool(done)

    async def purge(self) -> int:
        """Redis expires sessions by itself; this drops the index entries of expired ones."""
        r = self._redis()
        dropped = 0
        async for idx in r.scan_iter(match=f"{self.prefix}:*:idx"):
            tenant_key = idx[: -len(":idx")]
            if ":" in tenant_key[len(self.prefix) + 1 :]:
                continue  # a session or customer whose id ends in ":idx", not an index
            dropped += await self._drop_stale(idx, tenant_key, await r.zrange(idx, 0, -1))
            async for ckey in r.scan_iter(match=f"{tenant_key}:c:*"):
                # Customer sets count only once: their sessions were counted in the index.
                await self._drop_stale(ckey, tenant_key, list(await r.smembers(ckey)))
        return dropped

    async def _drop_stale(self, key: str, tenant_key: str, ids: list[str]) -> int:
        # In a script, so a session re-created meanwhile keeps its entry.
        kind = "z" if key.endswith(":idx") else "s"
        dropped = 0
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            dropped += int(
                await self._scripts["prune"](keys=[key], args=[tenant_key + ":s:", kind, *batch])
            )
        return dropped

    # --- long-term facts --------------------------------------------------------------------

    async def insert_fact(self, tenant: str, customer_id: str, fact: StoredFact) -> StoredFact:
        # The id is the text's hash, so HSETNX stores an identical fact only once.
        fact_id = hashlib.sha256(fact.text.encode()).hexdigest()[:32]
        fact = fact.model_copy(update={"id": fact_id})
        key = self._key(tenant, "f", customer_id)
        r = self._redis()
        await r.hsetnx(key, fact_id, _dump_fact(fact))
        return _load_fact(fact_id, await r.hget(key, fact_id))

    async def list_facts(self, tenant: str, customer_id: str) -> list[StoredFact]:
        rows = await self._redis().hgetall(self._key(tenant, "f", customer_id))
        facts = [_load_fact(k, v) for k, v in rows.items()]
        return sorted(facts, key=lambda f: (f.created_at, f.id))

    async def delete_fact(self, tenant: str, customer_id: str, fact_id: str) -> bool:
        return bool(await self._redis().hdel(self._key(tenant, "f", customer_id), fact_id))

    async def delete_facts(self, tenant: str, customer_id: str) -> int:
        key = self._key(tenant, "f", customer_id)
        r = self._redis()
        async with r.pipeline(transaction=True) as pipe:
            count, _ = await pipe.hlen(key).delete(key).execute()
        return int(count)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _dump_fact(fact: StoredFact) -> str:
    vector = base64.b64encode(fact.vector).decode()
    return json.dumps({"text": fact.text, "vector": vector, "created_at": fact.created_at})


def _load_fact(fact_id: str, raw: str) -> StoredFact:
    d = json.loads(raw)
    return StoredFact(
        id=fact_id, text=d["text"], vector=base64.b64decode(d["vector"]), created_at=d["created_at"]
    )
