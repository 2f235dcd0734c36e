"""Per-call overhead of glm-agent's MCP client against the SDK's bare `ClientSession.call_tool`.

The same tool of the same server program is called one call at a time, by:
  - baseline: `ClientSession.call_tool(name, args)` of an `mcp.Client` (the official SDK, bare);
  - glm-agent: `registry.get(name).run(args)`: a `Tool` of an `MCPServer` source (arguments
    validated against the server's inputSchema, the tool's policy: a timeout deadline, then the
    call and the result mapped to what the model reads).
Batches of the two alternate, so drift in the machine's load hits both alike. Over stdio each
client starts its own server process (stdio is one client per process); over Streamable HTTP
both talk to one server process.

Servers: the SDK-written test server (tests/mcp/mcp_test_server.py, its `echo` tool) over stdio
and Streamable HTTP, and the npm reference server (`echo`) over stdio and Streamable HTTP when
`scripts/setup` installed it.

    python benchmarks/mcp_overhead.py [--calls 400] [--batch 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST_SERVER = ROOT / "tests" / "mcp" / "mcp_test_server.py"
EVERYTHING = ROOT / "node_modules" / ".bin" / "mcp-server-everything"
QUIET = open(os.devnull, "w")  # noqa: SIM115  (the baseline servers' stderr, for the whole run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def http_server(command: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{command} did not start")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


async def measure(
    label: str,
    transport: str,
    connect: Any,
    ours: Any,
    tool: str,
    args: dict[str, Any],
    calls: int,
    batch: int,
) -> dict[str, Any]:
    from mcp import Client

    from glm_agent.tools import ToolRegistry

    registry = ToolRegistry([ours])
    await registry.ready()
    our_tool = registry.get(tool)
    async with Client(connect()) as client:
        session = client.session

        async def bare() -> Any:
            return await session.call_tool(tool, args)

        async def glm() -> Any:
            return await our_tool.run(args)

        await timed(bare, 20)  # warm up both paths
        await timed(glm, 20)
        base: list[float] = []
        mine: list[float] = []
        for _ in range(max(1, calls // batch)):
            base += await timed(bare, batch)
            mine += await timed(glm, batch)
    await registry.aclose()

    def q(xs: list[float], p: float) -> float:
        return sorted(xs)[int(p * (len(xs) - 1))] * 1e6

    b50, m50 = q(base, 0.5), q(mine, 0.5)
    return {
        "server": label,
        "transport": transport,
        "calls": len(mine),
        "baseline_median_us": round(b50, 1),
        "baseline_p90_us": round(q(base, 0.9), 1),
        "glm_agent_median_us": round(m50, 1),
        "glm_agent_p90_us": round(q(mine, 0.9), 1),
        "overhead_median_us": round(m50 - b50, 1),
        "ratio": round(m50 / b50, 3),
        "baseline_mean_us": round(statistics.fmean(base) * 1e6, 1),
        "glm_agent_mean_us": round(statistics.fmean(mine) * 1e6, 1),
    }


async def main(calls: int, batch: int) -> list[dict[str, Any]]:
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    from glm_agent.tools import MCPServer

    rows = []
    py = [sys.executable, str(TEST_SERVER)]
    echo_py = {"text": "hello"}
    rows.append(
        await measure(
            "python SDK test server",
            "stdio",
            lambda: stdio_client(StdioServerParameters(command=py[0], args=py[1:]), errlog=QUIET),
            MCPServer("py", command=py[0], args=py[1:]),
            "echo",
            echo_py,
            calls,
            batch,
        )
    )
    port = free_port()
    with http_server([*py, "http", str(port)], port, {}):
        url = f"http://127.0.0.1:{port}/mcp"
        rows.append(
            await measure(
                "python SDK test server",
                "streamable-http",
                lambda: streamable_http_client(url),
                MCPServer("py", url=url),
                "echo",
                echo_py,
                calls,
                batch,
            )
        )
    if EVERYTHING.exists():
        ev = str(EVERYTHING)
        echo_ev = {"message": "hello"}
        rows.append(
            await measure(
                "npm server-everything",
                "stdio",
                lambda: stdio_client(StdioServerParameters(command=ev), errlog=QUIET),
                MCPServer("ev", command=ev),
                "echo",
                echo_ev,
                calls,
                batch,
            )
        )
        port = free_port()
        with http_server([ev, "streamableHttp"], port, {"PORT": str(port)}):
            url = f"http://127.0.0.1:{port}/mcp"
            rows.append(
                await measure(
                    "npm server-everything",
                    "streamable-http",
                    lambda: streamable_http_client(url),
                    MCPServer("ev", url=url),
                    "echo",
                    echo_ev,
                    calls,
                    batch,
                )
            )
    else:
        print(f"(skipped the npm server: {EVERYTHING} is missing; run scripts/setup)")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per client and server")
    parser.add_argument("--batch", type=int, default=50, help="calls per alternating batch")
    a = parser.parse_args()
    rows = asyncio.run(main(a.calls, a.batch))
    print(f"\nPer-call latency, {a.calls} sequential calls each ({os.cpu_count()} CPUs)\n")
    print(
        "| server | transport | SDK ClientSession.call_tool median µs (p90) "
        "| glm-agent Tool.run median µs (p90) | overhead µs | glm-agent / SDK |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['server']} | {r['transport']} | {r['baseline_median_us']:.0f} "
            f"({r['baseline_p90_us']:.0f}) | {r['glm_agent_median_us']:.0f} "
            f"({r['glm_agent_p90_us']:.0f}) | {r['overhead_median_us']:+.0f} | {r['ratio']:.2f} |"
        )
    out = ROOT / "benchmarks" / "results" / "mcp_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\nwrote {out}")
