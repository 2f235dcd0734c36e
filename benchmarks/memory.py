"""Session stores: appends/s, loads/s and p99 latency with 1, 8 and 64 concurrent writers, and a
kill -9 crash test.

Baseline (measured in the same run, same backend, same concurrency): the bare driver write of the
same JSON turn with no version check, no metadata and no session row (SQLite: one INSERT with the
same `synchronous=FULL`; Redis: one RPUSH; PostgreSQL: one autocommit INSERT through the same
pool). It is the floor our atomic, versioned append is paid against.

    .venv/bin/python benchmarks/memory.py [--appends 1024] [--backends sqlite,redis,postgres]

Redis and PostgreSQL are expected on 127.0.0.1 (skipped when unreachable); nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glm_agent.memory import open_store
from glm_agent.memory._session import dump_messages
from glm_agent.memory.crash import crash_test
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolMessage,
    UserMessage,
)

REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
WRITERS = (1, 8, 64)
SESSION_TURNS = 16


def _turn(i: int) -> list[Message]:
    call = ToolCall.from_args("order_status", {"order_id": f"A-{i}"}, id=f"call_{i}")
    return [
        UserMessage(content=f"Where is my order A-{i}? 我的订单到哪了？"),
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(content='{"status": "shipped", "eta": "2026-11-25"}', tool_call_id=call.id),
        AssistantMessage(content=f"Order A-{i} has shipped and arrives on 25 November."),
    ]


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _timed(
    n_writers: int, per_writer: int, op: Callable[[int, int], Awaitable[Any]]
) -> dict[str, float]:
    lat: list[float] = []

    async def writer(w: int) -> None:
        for i in range(per_writer):
            t = time.perf_counter()
            await op(w, i)
            lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(n_writers)))
    wall = time.perf_counter() - start
    lat.sort()
    return {
        "ops_per_s": len(lat) / wall,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    }


# --- baselines: the bare driver write ---------------------------------------------------------


class _SQLiteBaseline:
    def __init__(self, path: str) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS raw (sid TEXT, body TEXT)")

    async def write(self, sid: str, body: str) -> None:
        def insert() -> None:
            self.conn.execute("INSERT INTO raw VALUES (?, ?)", (sid, body))

        await asyncio.get_running_loop().run_in_executor(self.pool, insert)

    async def close(self) -> None:
        self.conn.close()
        self.pool.shutdown()


class _RedisBaseline:
    def __init__(self, prefix: str) -> None:
        import redis.asyncio as aioredis

        self.r = aioredis.Redis.from_url(REDIS)
        self.prefix = prefix

    async def write(self, sid: str, body: str) -> None:
        await self.r.rpush(f"{self.prefix}:raw:{sid}", body)

    async def close(self) -> None:
        keys = [k async for k in self.r.scan_iter(match=f"{self.prefix}:*")]
        if keys:
            await self.r.delete(*keys)
        await self.r.aclose()


class _PostgresBaseline:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.pool: Any = None

    async def write(self, sid: str, body: str) -> None:
        if self.pool is None:
            from psycopg_pool import AsyncConnectionPool

            async def configure(conn: Any) -> None:
                await conn.execute(f"SET search_path TO {self.schema}")

            self.pool = AsyncConnectionPool(
                POSTGRES, max_size=10, kwargs={"autocommit": True}, configure=configure, open=False
            )
            await self.pool.open()
            async with self.pool.connection() as c:
                await c.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                await c.execute("CREATE TABLE IF NOT EXISTS raw (sid TEXT, body TEXT)")
        async with self.pool.connection() as c:
            await c.execute("INSERT INTO raw VALUES (%s, %s)", (sid, body))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()


# --- the run ----------------------------------------------------------------------------------


def _urls(tmp: str) -> dict[str, tuple[str, Callable[[], Any], Callable[[], None]]]:
    """backend -> (store URL, baseline factory, cleanup)."""
    out: dict[str, tuple[str, Callable[[], Any], Callable[[], None]]] = {}
    ns = "glm_bench_" + uuid.uuid4().hex[:8]
    out["sqlite"] = (
        f"sqlite:///{tmp}/bench.db",
        lambda: _SQLiteBaseline(f"{tmp}/raw.db"),
        lambda: None,
    )
    if _reachable(6379):

        def clean_redis() -> None:
            import redis

            r = redis.Redis.from_url(REDIS)
            keys = list(r.scan_iter(match=f"{ns}:*"))
            if keys:
                r.delete(*keys)

        out["redis"] = (f"{REDIS}?prefix={ns}", lambda: _RedisBaseline(ns + "b"), clean_redis)
    if _reachable(5432):

        def clean_pg() -> None:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {ns} CASCADE")
                c.execute(f"DROP SCHEMA IF EXISTS {ns}b CASCADE")

        out["postgres"] = (f"{POSTGRES}?schema={ns}", lambda: _PostgresBaseline(ns + "b"), clean_pg)
    return out


async def _bench(url: str, baseline: Any, writers: int, total: int) -> dict[str, Any]:
    per = max(4, total // writers)
    body = dump_messages(_turn(0))
    tag = uuid.uuid4().hex[:6]
    async with open_store(url) as store:
        await store.append("bench", "warm", _turn(0))
        # Sessions of SESSION_TURNS turns (4 messages each), so loads read the same size everywhere.
        appends = await _timed(
            writers,
            per,
            lambda w, i: store.append("bench", f"{tag}-{w}-{i // SESSION_TURNS}", _turn(i)),
        )
        loads = await _timed(writers, per, lambda w, i: store.load("bench", f"{tag}-{w}-0"))
        hot = await _timed(
            writers, max(2, per // 4), lambda w, i: store.append("bench", f"{tag}-hot", _turn(i))
        )
        hot_session = await store.load("bench", f"{tag}-hot")
        assert hot_session is not None and hot_session.version == writers * max(2, per // 4)
    await baseline.write("warm", body)
    base = await _timed(
        writers, per, lambda w, i: baseline.write(f"{tag}-{w}-{i // SESSION_TURNS}", body)
    )
    await baseline.close()
    return {
        "writers": writers,
        "appends": appends,
        "loads": loads,
        "hot_appends": hot,
        "baseline": base,
        "turns_per_loaded_session": min(per, SESSION_TURNS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--appends", type=int, default=1024, help="appends per measurement (split among writers)"
    )
    parser.add_argument("--backends", default="sqlite,redis,postgres")
    parser.add_argument("--crash-kill-after", type=int, default=300)
    args = parser.parse_args()
    wanted = args.backends.split(",")
    results: dict[str, Any] = {
        "baseline": "bare driver write of the same turn (no version, no session row)",
        "runs": [],
        "crash": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        urls = _urls(tmp)
        for backend in wanted:
            if backend not in urls:
                print(f"skipping {backend}: server not reachable", file=sys.stderr)
                continue
            url, make_baseline, cleanup = urls[backend]
            try:
                for w in WRITERS:
                    r = asyncio.run(_bench(url, make_baseline(), w, args.appends))
                    r["backend"] = backend
                    results["runs"].append(r)
                report = crash_test(url, kill_after=args.crash_kill_after, writers=4)
                results["crash"].append({"backend": backend, **report.__dict__})
            finally:
                cleanup()

    print(
        "| backend | writers | appends/s | append p50 ms | append p99 ms | loads/s | load p99 ms | one hot session appends/s | hot p99 ms | baseline writes/s | baseline p99 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["runs"]:
        a, lo, h, b = r["appends"], r["loads"], r["hot_appends"], r["baseline"]
        print(
            f"| {r['backend']} | {r['writers']} | {a['ops_per_s']:.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | "
            f"{lo['ops_per_s']:.0f} | {lo['p99_ms']:.2f} | {h['ops_per_s']:.0f} | {h['p99_ms']:.2f} | "
            f"{b['ops_per_s']:.0f} | {b['p99_ms']:.2f} |"
        )
    print()
    print(
        "| crash test (kill -9 during a burst, 4 writers) | acknowledged | stored after restart | lost |"
    )
    print("|---|---:|---:|---:|")
    for c in results["crash"]:
        print(f"| {c['backend']} | {c['acknowledged']} | {c['stored']} | {c['lost']} |")
    out = Path(__file__).parent / "results" / "memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
