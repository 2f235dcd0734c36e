"""Support bot through its HTTP API: curated answers vs the model path, and conversations/s.

    .venv/bin/python benchmarks/support_bot.py [--requests 100] [--conversations 300]

The server (uvicorn, one worker) runs in a subprocess with a `SupportBot` over a FunctionModel
agent (no weights: the numbers are the framework's own cost — HTTP, SSE, SQLite event log and
session store, redaction, curated matching, the agent loop with one tool call).

1. Latency of one customer message, sequential: a curated answer (no model call) against the
   baseline, the model path (two scripted model turns and an order-lookup tool call).
2. Conversations per second through the widget's endpoints (create, two messages, transcript) at
   concurrency 1 (baseline) and 32, for model-path and curated conversations (median of 3 runs).
   The load generator runs on the same machine as the server.

Prints a markdown table and writes benchmarks/results/support_bot.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CURATED_Q = "How much is shipping?"


def build_app(folder: str) -> Any:
    """The bot app served by the subprocess."""
    from glm_agent import Agent
    from glm_agent.memory import SQLiteStore
    from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
    from glm_agent.models import AgentInfo, FunctionModel
    from glm_agent.serving.bot import SupportBot, SupportConfig, create_bot_app, hash_password
    from glm_agent.serving.bot._console import curated_save

    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        return {"order_id": order_id, "status": "shipped"}

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            data = json.loads(last.content)
            return f"Order {data['order_id']} is {data['status']}."
        text = last.content if isinstance(last, UserMessage) else ""
        if m := re.search(r"A-\d+", text or ""):
            return AssistantMessage(
                tool_calls=(ToolCall.from_args("lookup_order", {"order_id": m[0]}),)
            )
        return "Could you give me your order number?"

    agent = Agent(
        FunctionModel(turn, chunk_size=8), tools=[lookup_order], system_prompt="Shop bot."
    )
    config = SupportConfig(
        tenant="bench",
        database=f"{folder}/support.db",
        console_accounts={"a": hash_password("a")},
    )
    bot = SupportBot(agent, config, base_dir=folder, store=SQLiteStore(f"{folder}/sessions.db"))
    curated_save(bot, CURATED_Q, "Free over 99 yuan, else 10 yuan.", ["shipping cost", "运费多少"])
    return create_bot_app(bot)


def serve(port: int, folder: str) -> None:
    import uvicorn

    uvicorn.run(build_app(folder), host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def new_conv(client: Any) -> tuple[str, dict[str, str]]:
    r = await client.post("/v1/support/conversations", json={"locale": "en"})
    data = r.json()
    return data["conversation_id"], {"X-Customer-Token": data["customer_token"]}


async def say(client: Any, cid: str, headers: dict[str, str], text: str) -> str:
    r = await client.post(
        f"/v1/support/conversations/{cid}/messages", json={"text": text}, headers=headers
    )
    sources = re.findall(r'"source": "(\w+)"', r.text)
    assert r.status_code == 200 and '"type": "done"' in r.text, r.text
    return sources[-1]


async def latency(url: str, n: int) -> dict[str, dict[str, float]]:
    import httpx

    out = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for name, text, want in (
            ("model path (baseline)", "where is A-1042?", "model"),
            ("curated answer", "how much is shipping", "curated"),
        ):
            cid, headers = await new_conv(client)
            for _ in range(10):  # warm-up
                await say(client, cid, headers, text)
            times = []
            for i in range(n):
                if i % 5 == 0:  # conversations of typical length, not one ever-growing one
                    cid, headers = await new_conv(client)
                t0 = time.perf_counter()
                source = await say(client, cid, headers, text)
                times.append((time.perf_counter() - t0) * 1000)
                assert source == want, source
            out[name] = {
                "p50_ms": statistics.median(times),
                "p95_ms": pct(times, 0.95),
                "mean_ms": statistics.fmean(times),
            }
    return out


async def throughput(url: str, total: int, concurrency: int, text: str) -> dict[str, float]:
    import httpx

    lat: list[float] = []
    left = list(range(total))

    async def worker(client: Any) -> None:
        while left:
            left.pop()
            cid, headers = await new_conv(client)
            for _ in range(2):
                t0 = time.perf_counter()
                await say(client, cid, headers, text)
                lat.append((time.perf_counter() - t0) * 1000)
            r = await client.get(f"/v1/support/conversations/{cid}", headers=headers)
            assert len(r.json()["messages"]) == 5  # greeting + 2 x (question, answer)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "conversations_per_s": total / wall,
        "message_p50_ms": statistics.median(lat),
        "message_p95_ms": pct(lat, 0.95),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--conversations", type=int, default=300)
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    import httpx

    folder = tempfile.mkdtemp(prefix="support-bench-")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), folder], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(url + "/v1/support/conversations", json={}, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the bot server did not start") from None
                time.sleep(0.2)
        lat = asyncio.run(latency(url, args.requests))
        tp = {}
        for kind, text in (("model", "where is A-1042?"), ("curated", "shipping cost")):
            for conc in (1, 32):
                n = max(args.conversations // (3 if conc == 1 else 1), 20)
                # The median of three runs: the machine may be shared, single runs are noisy.
                runs = sorted(
                    (asyncio.run(throughput(url, n, conc, text)) for _ in range(3)),
                    key=lambda r: r["conversations_per_s"],
                )
                tp[f"{kind}, concurrency {conc}"] = runs[1]
    finally:
        proc.terminate()
        proc.wait(10)
    base = lat["model path (baseline)"]["p50_ms"]
    print("## Support bot: one message through POST /v1/support/conversations/{id}/messages\n")
    print("| path | p50 ms | p95 ms | mean ms | speed-up vs model path (p50) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in lat.items():
        print(
            f"| {name} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['mean_ms']:.2f} | "
            f"{base / r['p50_ms']:.2f}x |"
        )
    print("\n## Conversations per second (create + 2 messages + transcript), one uvicorn worker\n")
    print("| load | conversations/s | message p50 ms | message p95 ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in tp.items():
        print(
            f"| {name} | {r['conversations_per_s']:.1f} | {r['message_p50_ms']:.2f} | "
            f"{r['message_p95_ms']:.2f} |"
        )
    out = ROOT / "benchmarks" / "results" / "support_bot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "latency": lat,
                "throughput": tp,
                "requests": args.requests,
                "conversations": args.conversations,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
