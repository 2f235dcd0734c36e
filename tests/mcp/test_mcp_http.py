"""MCP servers reached over HTTP: Streamable HTTP and the older SSE transport, against the npm
reference server and the Python SDK server, with headers carrying `${ENV}` secrets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mcp_harness import PYTHON_SERVER, free_port, node_tool, server_process

from glm_agent import Agent, FunctionModel
from glm_agent.exceptions import ToolServerError
from glm_agent.tools import MCPServer, load_registry


def test_streamable_http_and_sse_against_the_reference_server() -> None:
    everything = node_tool("mcp-server-everything")
    http_port, sse_port = free_port(), free_port()
    with (
        server_process([everything, "streamableHttp"], http_port, {"PORT": str(http_port)}),
        server_process([everything, "sse"], sse_port, {"PORT": str(sse_port)}),
    ):
        http = MCPServer("http", url=f"http://127.0.0.1:{http_port}/mcp", prefix="h")
        sse = MCPServer("sse", url=f"http://127.0.0.1:{sse_port}/sse", prefix="s")
        assert (http.spec.kind, sse.spec.kind) == ("streamable-http", "sse")

        async def go() -> None:
            agent = Agent(FunctionModel(lambda m, i: "ok"), tools=[http, sse])
            try:
                await agent.tools.ready()
                assert await agent.tools.get("h_get-sum").run({"a": 20, "b": 22}) == (
                    "The sum of 20 and 22 is 42."
                )
                assert await agent.tools.get("s_echo").run({"message": "over sse"}) == (
                    "Echo: over sse"
                )
                image = await agent.tools.get("h_get-tiny-image").run({})
                assert "[image: image/png, 4033 bytes]" in image
                calls = [agent.tools.get("h_echo").run({"message": str(i)}) for i in range(10)]
                assert await asyncio.gather(*calls) == [f"Echo: {i}" for i in range(10)]
            finally:
                await agent.aclose()
            assert not http.running and not sse.running

        asyncio.run(go())


@pytest.mark.slow
def test_python_server_over_http_with_secret_headers_from_a_registry(tmp_path: Path) -> None:
    http_port, sse_port = free_port(), free_port()
    (tmp_path / "tools.yaml").write_text(
        "version: 1\n"
        "mcp:\n"
        "  api:\n"
        "    url: http://127.0.0.1:${API_PORT}/mcp\n"
        "    headers: {X-Test-Token: '${API_TOKEN}'}\n"
        "    prefix: api\n"
        "  legacy:\n"
        "    url: http://127.0.0.1:${SSE_PORT}/sse\n"
        "    headers: {X-Test-Token: '${API_TOKEN:-fallback}'}\n"
        "    allowed_tools: [token]\n"
    )
    env = {"API_PORT": str(http_port), "SSE_PORT": str(sse_port), "API_TOKEN": "s3cret"}
    registry = load_registry(tmp_path / "tools.yaml", env=env)
    with (
        server_process([*PYTHON_SERVER, "http", str(http_port)], http_port),
        server_process([*PYTHON_SERVER, "sse", str(sse_port)], sse_port),
    ):

        async def go() -> None:
            async with registry:
                assert await registry.get("api_token").run({}) == "s3cret"
                assert await registry.get("token").run({}) == "s3cret"
                assert await registry.get("api_add").run({"a": 2, "b": 3}) == "5"
                await registry.get("api_grow").run({})
                for _ in range(200):
                    if "api_late" in registry:
                        break
                    await asyncio.sleep(0.05)
                assert await registry.get("api_late").run({"text": "x"}) == "X"

        asyncio.run(go())


def test_an_unreachable_http_server_is_a_clear_error() -> None:
    port = free_port()
    down = MCPServer("search", url=f"http://127.0.0.1:{port}/mcp", startup_timeout=10)

    async def go() -> None:
        with pytest.raises(ToolServerError) as caught:
            await down.start()
        message = str(caught.value)
        assert message.startswith(
            f"MCP server 'search': cannot connect to http://127.0.0.1:{port}/mcp "
            "(streamable-http): "
        )
        assert "ConnectError" in message or "connect" in message.lower()

    asyncio.run(go())
