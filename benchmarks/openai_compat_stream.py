"""Client-side cost of a streamed turn: glm-agent's OpenAICompatibleModel vs the official client.

A local server (uvicorn on 127.0.0.1) streams one pre-built chat turn the way vLLM does: N text
deltas, then a tool call whose arguments arrive in pieces, usage in the last chunk, `[DONE]`.
Each client consumes the whole turn and assembles text and tool call. The server side is the same
for every client, so the differences are the clients' SSE decoding, JSON parsing and bookkeeping.

Baseline: the official `openai` Python client (sync), in the same run. Also shown: raw httpx
line iteration (the floor: no JSON at all).

    python benchmarks/openai_compat_stream.py [--chunks 2000] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from glm_agent.messages import ResponseDone, ToolDefinition, UserMessage
from glm_agent.models.openai_compat import OpenAICompatibleModel

TOOL = ToolDefinition(name="lookup", parameters={"type": "object", "properties": {}})


def build_turn(n_chunks: int) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> str:
        data: dict[str, Any] = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "glm-4.5",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
            if delta or finish
            else [],
        }
        if usage:
            data["usage"] = usage
        return f"data: {json.dumps(data)}\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f"w{i:03d} "}) for i in range(n_chunks)]
    head = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": ""},
    }
    parts.append(chunk({"tool_calls": [head]}))
    parts += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
        for p in ['{"q', '": "', "x", '"}']
    ]
    parts.append(chunk({}, finish="tool_calls"))
    parts.append(
        chunk(
            {},
            usage={
                "prompt_tokens": 10,
                "completion_tokens": n_chunks,
                "total_tokens": 10 + n_chunks,
            },
        )
    )
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def serve(body: bytes) -> tuple[str, Callable[[], None]]:
    async def chat(request: Request) -> StreamingResponse:
        await request.body()

        async def gen() -> Any:
            for i in range(0, len(body), 16384):
                yield body[i : i + 16384]

        return StreamingResponse(gen(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(5)

    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1", stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    base, stop = serve(build_turn(args.chunks))
    expected_text = "".join(f"w{i:03d} " for i in range(args.chunks))
    messages = [UserMessage(content="hi")]

    official = openai.OpenAI(base_url=base, api_key="k", max_retries=0)
    ours = OpenAICompatibleModel("glm-4.5", base_url=base, provider="vllm")
    raw = httpx.Client()

    def run_official() -> None:
        text, calls = [], []
        stream = official.chat.completions.create(
            model="glm-4.5",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        for c in stream:
            for choice in c.choices:
                text.append(choice.delta.content or "")
                for tc in choice.delta.tool_calls or []:
                    calls.append(tc.function.arguments if tc.function else "")
        assert "".join(text) == expected_text and "".join(c or "" for c in calls) == '{"q": "x"}'

    def run_ours_sync() -> None:
        done = list(ours.stream_sync(messages, [TOOL]))[-1]
        assert isinstance(done, ResponseDone) and done.response.message.content == expected_text

    def run_ours_async() -> None:
        async def go() -> Any:
            events = [e async for e in ours.request_stream(messages, [TOOL])]
            return events[-1]

        done = loop.run_until_complete(go())
        assert isinstance(done, ResponseDone) and done.response.message.content == expected_text

    def run_raw() -> None:
        with raw.stream("POST", base + "/chat/completions", json={"model": "m"}) as r:
            n = sum(1 for line in r.iter_lines() if line.startswith("data:"))
        assert n == args.chunks + 9

    loop = asyncio.new_event_loop()
    rows: list[dict[str, Any]] = []
    for name, fn in [
        ("openai client (sync) [baseline]", run_official),
        ("glm-agent stream_sync", run_ours_sync),
        ("glm-agent request_stream (async)", run_ours_async),
        ("httpx iter_lines, no JSON [floor]", run_raw),
    ]:
        fn()  # warm up connections and imports
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append(
            {"client": name, "median_ms": med * 1000, "chunks_per_s": (args.chunks + 9) / med}
        )
    loop.run_until_complete(ours.aclose())
    loop.close()
    ours.close()
    official.close()
    raw.close()
    stop()

    base_ms = rows[0]["median_ms"]
    print(f"Streamed turn of {args.chunks} text chunks + a tool call, median of {args.runs} runs\n")
    print("| client | median ms/turn | chunks/s | vs baseline |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        r["vs_baseline"] = base_ms / r["median_ms"]
        print(
            f"| {r['client']} | {r['median_ms']:.1f} | {r['chunks_per_s']:,.0f} | "
            f"{r['vs_baseline']:.2f}x |"
        )
    out = Path(__file__).parent / "results" / "openai_compat_stream.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"chunks": args.chunks, "runs": args.runs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
