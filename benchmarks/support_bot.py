"""Support bot through its doors: the widget API and the OpenAI API, before and after.

    .venv/bin/python benchmarks/support_bot.py [--requests 100] [--conversations 300]
    .venv/bin/python benchmarks/support_bot.py --before e165249    # the same against a revision

The server (uvicorn, one worker) runs in a subprocess with a `SupportBot` over a FunctionModel
agent (no weights: the numbers are the framework's own cost — HTTP, SSE, SQLite event log and
session store, redaction, curated matching, the agent loop with one tool call).

1. Latency of one customer message, sequential, per door: the widget API
   (`POST /v1/support/conversations/{id}/messages`, SSE) and the OpenAI API
   (`POST /v1/chat/completions` with the support agent as the model and an `X-Session-Id`), on the
   model path (two scripted model turns and an order-lookup tool call); on the widget, also a
   curated answer (no model call).
2. Conversations per second per door (a conversation: two messages, plus the transcript on the
   widget) at concurrency 1 and 32 (median of 3 runs). The load generator runs on the same
   machine as the server.

With `--before REV`, the same measurements run in the same invocation against the server code of
a git revision (checked out into a temporary folder): the named baseline. Before the support
pipeline served every door, the OpenAI door ran the agent alone (no event log, redaction,
curated answers or policies), so its figures show what the pipeline costs there.

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
import uuid
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
    from glm_agent.serving.bot import SupportBot, SupportConfig, hash_password
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
        FunctionModel(turn, chunk_size=8),
        tools=[lookup_order],
        system_prompt="Shop bot.",
        name="shop",
        memory=f"sqlite:///{folder}/sessions.db",
    )
    limits = {"conversations_per_minute": 1e9, "messages_per_minute": 1e9, "burst": 10**9}
    config = SupportConfig(
        **({"limits": limits} if "limits" in SupportConfig.model_fields else {}),
        tenant="bench",
        database=f"{folder}/support.db",
        console_accounts={"a": hash_password("a")},
    )
    bot = SupportBot(agent, config, base_dir=folder, store=SQLiteStore(f"{folder}/sessions.db"))
    curated_save(bot, CURATED_Q, "Free over 99 yuan, else 10 yuan.", ["shipping cost", "运费多少"])
    from glm_agent.serving import create_app

    try:
        return create_app([agent], support=bot)  # every door through the support pipeline
    except TypeError:  # a revision before it: the bot's routes beside the agent's own
        from glm_agent.serving.bot import create_bot_router  # type: ignore[attr-defined]

        app = create_app([agent])
        app.include_router(create_bot_router(bot))
        return app


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


async def chat(client: Any, session: str, text: str) -> str:
    r = await client.post(
        "/v1/chat/completions",
        json={"model": "shop", "messages": [{"role": "user", "content": text}]},
        headers={"X-Session-Id": session},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["choices"][0]["message"]["content"])


async def latency(url: str, n: int) -> dict[str, dict[str, float]]:
    import httpx

    out = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for name, text, door in (
            ("widget, model path", "where is A-1042?", "widget"),
            ("widget, curated answer", "how much is shipping", "widget"),
            ("OpenAI API, model path", "where is A-1042?", "openai"),
        ):
            cid, headers = await new_conv(client)
            session = uuid.uuid4().hex
            times = []
            for i in range(n + 10):  # the first 10: warm-up
                if i % 5 == 0:  # conversations of typical length, not one ever-growing one
                    cid, headers = await new_conv(client)
                    session = uuid.uuid4().hex
                t0 = time.perf_counter()
                if door == "widget":
                    source = await say(client, cid, headers, text)
                    assert source == ("curated" if "shipping" in text else "model"), source
                else:
                    assert "A-1042" in await chat(client, session, text)
                if i >= 10:
                    times.append((time.perf_counter() - t0) * 1000)
            out[name] = {
                "p50_ms": statistics.median(times),
                "p95_ms": pct(times, 0.95),
                "mean_ms": statistics.fmean(times),
            }
    return out


async def throughput(url: str, total: int, concurrency: int, door: str) -> dict[str, float]:
    import httpx

    lat: list[float] = []
    left = list(range(total))
    text = "where is A-1042?"

    async def worker(client: Any) -> None:
        while left:
            left.pop()
            if door == "widget":
                cid, headers = await new_conv(client)
            session = uuid.uuid4().hex
            for _ in range(2):
                t0 = time.perf_counter()
                if door == "widget":
                    await say(client, cid, headers, text)
                else:
                    await chat(client, session, text)
                lat.append((time.perf_counter() - t0) * 1000)
            if door == "widget":
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


def measure(tree: Path, args: Any) -> dict[str, Any]:
    """Serve the bot from the code in `tree` in a subprocess and measure both doors."""
    import httpx

    folder = tempfile.mkdtemp(prefix="support-bench-")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
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
        for door in ("widget", "openai"):
            for conc in (1, 32):
                n = max(args.conversations // (3 if conc == 1 else 1), 20)
                # The median of three runs: the machine may be shared, single runs are noisy.
                runs = sorted(
                    (asyncio.run(throughput(url, n, conc, door)) for _ in range(3)),
                    key=lambda r: r["conversations_per_s"],
                )
                tp[f"{door}, concurrency {conc}"] = runs[1]
    finally:
        proc.terminate()
        proc.wait(10)
    return {"latency": lat, "throughput": tp}


def checkout(rev: str) -> Path:
    """The files of git revision `rev` in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="support-bench-rev-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "glm_agent"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--conversations", type=int, default=300)
    ap.add_argument("--before", help="also measure the server code of this git revision")
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    runs = {"this tree": measure(ROOT, args)}
    if args.before:
        runs[f"before ({args.before})"] = measure(checkout(args.before), args)
    print("## Support bot: one customer message, per door (sequential)\n")
    print("| code | door, path | p50 ms | p95 ms | mean ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for code, r in runs.items():
        for name, m in r["latency"].items():
            print(
                f"| {code} | {name} | {m['p50_ms']:.2f} | {m['p95_ms']:.2f} | {m['mean_ms']:.2f} |"
            )
    print("\n## Conversations per second (two messages each), one uvicorn worker\n")
    print("| code | door, load | conversations/s | message p50 ms | message p95 ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for code, r in runs.items():
        for name, m in r["throughput"].items():
            print(
                f"| {code} | {name} | {m['conversations_per_s']:.1f} | "
                f"{m['message_p50_ms']:.2f} | {m['message_p95_ms']:.2f} |"
            )
    out = ROOT / "benchmarks" / "results" / "support_bot.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "runs": runs,
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
