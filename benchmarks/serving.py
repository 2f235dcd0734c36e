"""HTTP serving cost: glm-agent's /v1/chat/completions vs a bare FastAPI endpoint.

Both servers run under uvicorn (same settings) in their own subprocess on 127.0.0.1, so client
and server never share a GIL. The glm-agent side serves an agent whose FunctionModel answers at
once (no tools, no memory): what is timed is the framework (auth, validation, the agent loop,
metrics, request ids, OpenAI response building). The baseline is a bare FastAPI endpoint that
reads the JSON body and returns the same completion JSON: the web stack's own limit.

    python benchmarks/serving.py [--requests 600] [--concurrency 1,16,64] [--repeats 3]
"""

# No `from __future__ import annotations`: FastAPI resolves the bare endpoint's annotations.

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ANSWER = "Hello! How can I help you today?"
BODY = {"model": "bench", "messages": [{"role": "user", "content": "hi"}]}


def _glm_app() -> Any:
    from glm_agent import Agent
    from glm_agent.models import FunctionModel
    from glm_agent.serving import create_app

    agent: Agent[str] = Agent(FunctionModel(lambda m, i: ANSWER), name="bench")
    return create_app([agent])


def _bare_app() -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11},
            }
        )

    return app


def _serve(kind: str, port: int) -> None:
    import uvicorn

    app = _glm_app() if kind == "glm-agent" else _bare_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_up(url: str) -> None:
    import httpx

    async with httpx.AsyncClient() as c:
        for _ in range(300):
            try:
                await c.post(url, json=BODY)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


async def _load(url: str, concurrency: int, total: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for _ in range(min(total, 50)):  # warm-up
            (await client.post(url, json=BODY)).raise_for_status()
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                r = await client.post(url, json=BODY)
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


async def _in_process(app: Any, total: int) -> float:
    """Microseconds per request through the ASGI app with no sockets (one client, in order)."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(50):
            (await client.post("/v1/chat/completions", json=BODY)).raise_for_status()
        start = time.perf_counter()
        for _ in range(total):
            await client.post("/v1/chat/completions", json=BODY)
        return (time.perf_counter() - start) / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="Requests per cell.")
    parser.add_argument("--concurrency", default="1,16,64", help="Comma-separated client counts.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved runs per cell.")
    parser.add_argument("--serve", choices=["glm-agent", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port)
        return
    levels = [int(c) for c in args.concurrency.split(",")]
    kinds = ("bare", "glm-agent")
    urls: dict[str, str] = {}
    procs = []
    for kind in kinds:
        port = _free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, "--port", str(port)],
                stdout=subprocess.DEVNULL,
            )
        )
        urls[kind] = f"http://127.0.0.1:{port}/v1/chat/completions"
    rows: list[dict[str, Any]] = []
    try:
        for url in urls.values():
            asyncio.run(_wait_up(url))
        for c in levels:
            # Interleaved repeats, median kept: a busy machine slows both sides alike.
            runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
            for _ in range(args.repeats):
                for kind in kinds:
                    runs[kind].append(asyncio.run(_load(urls[kind], c, args.requests)))
            for kind in kinds:
                by_rps = sorted(runs[kind], key=lambda r: r["rps"])
                rows.append({"server": kind, "concurrency": c, **by_rps[len(by_rps) // 2]})
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    base = {r["concurrency"]: r for r in rows if r["server"] == "bare"}
    print("| server | clients | req/s | p50 ms | p99 ms | req/s vs bare |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(rows, key=lambda r: (r["concurrency"], r["server"])):
        ratio = r["rps"] / base[r["concurrency"]]["rps"]
        print(
            f"| {r['server']} | {r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {ratio:.2f}x |"
        )
    # The same request in process (ASGI, no sockets, same client): the server-side cost alone,
    # less sensitive to a busy machine than the socket runs above.
    in_process = {
        kind: asyncio.run(_in_process(make(), args.requests))
        for kind, make in (("bare", _bare_app), ("glm-agent", _glm_app))
    }
    print(
        f"\nin process (httpx.ASGITransport, 1 client): bare {in_process['bare']:.0f} µs/request, "
        f"glm-agent {in_process['glm-agent']:.0f} µs/request "
        f"(+{in_process['glm-agent'] - in_process['bare']:.0f} µs)"
    )
    out = Path(__file__).parent / "results" / "serving.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"requests_per_cell": args.requests, "rows": rows, "in_process_us": in_process}
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
