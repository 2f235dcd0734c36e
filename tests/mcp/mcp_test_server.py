"""An MCP server written with the official Python SDK, for the tests (and the benchmark).

Run: `python mcp_test_server.py` (stdio), `... http PORT` (Streamable HTTP at /mcp) or
`... sse PORT` (the older SSE transport at /sse).
"""

from __future__ import annotations

import base64
import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent, TextContent

# A 1x1 PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()

server = MCPServer("glm-agent-test-server")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def pid() -> int:
    """The server process's id (shows whether calls share one process)."""
    return os.getpid()


@server.tool()
def divide(a: float, b: float) -> float:
    """Divide a by b (fails for b = 0, as the model should learn)."""
    if b == 0:
        raise ToolError("b must not be 0")
    return a / b


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool named `late` and tell the clients that the tool list changed."""

    def late(text: str) -> str:
        """A tool that appeared after the start."""
        return text.upper()

    server.add_tool(late)
    await ctx.notify_tools_changed()  # 2026-07-28 clients: their subscriptions/listen stream
    if not str(ctx.protocol_version).startswith("2026"):
        await ctx.session.send_tool_list_changed()  # earlier clients: a notification
    return "grown"


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    os._exit(3)


@server.tool()
def crash_once(marker: str) -> str:
    """Exit the process the first time (creating the file `marker`); answer after that."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return "survived"


@server.tool()
async def hang() -> str:
    """Never return."""
    await anyio.sleep(3600)
    return "never"


@server.tool()
async def slow(seconds: float) -> str:
    """Return after `seconds`."""
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def image() -> list[TextContent | ImageContent]:
    """A picture and a caption."""
    return [
        TextContent(type="text", text="a one-pixel picture"),
        ImageContent(type="image", data=PIXEL, mime_type="image/png"),
    ]


@server.tool()
def token(ctx: Context) -> str:
    """The X-Test-Token header of the request (HTTP transports)."""
    return (ctx.headers or {}).get("x-test-token", "(none)")


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if kind == "stdio":
        print("test server starting", file=sys.stderr)
        server.run("stdio")
    elif kind == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("sse", host="127.0.0.1", port=int(sys.argv[2]))
