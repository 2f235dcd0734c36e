"""One live connection to an MCP server, owned by a task of its own (the SDK's task groups must
be entered and left by one task): it opens the transport (stdio, Streamable HTTP or SSE) through
the SDK, lists the tools, follows the server's "tools changed" signal (a notification on older
protocol versions, a `subscriptions/listen` stream on newer ones) and waits to be stopped. Its
read stream is watched, so the end of a server process is noticed when its output ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any

from glm_agent.exceptions import ToolServerError

if TYPE_CHECKING:
    from glm_agent.tools._mcp_client import MCPServer

__all__ = ["Connection", "leaf", "stderr_note"]

log = logging.getLogger("glm_agent.tools.mcp")

_STDERR_TAIL = 1500


def leaf(error: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups of the SDK's task groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class _WatchedStream:
    """A transport's read stream that tells its connection when it ends (the server is gone)."""

    def __init__(self, stream: Any, conn: Connection) -> None:
        self._stream, self._conn = stream, conn

    @property
    def last_context(self) -> Any:
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._stream.receive()
        except BaseException:
            self._conn.mark_dead()
            raise

    def __aiter__(self) -> _WatchedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._stream.__anext__()
        except BaseException:
            self._conn.mark_dead()
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _WatchedStream:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        self._conn.mark_dead()
        result: bool | None = await self._stream.__aexit__(*exc)
        return result


class Connection:
    """One live connection to the server (see the module docstring)."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self.client: Any = None
        self.alive = True
        self.stop = asyncio.Event()
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.errlog: IO[str] | None = None

    def mark_dead(self) -> None:
        """Note that the connection ended: the next call starts the server again."""
        self.alive = False

    def stderr_tail(self) -> str:
        """The server process's last lines on stderr (stdio servers), for error messages."""
        if self.errlog is None or self.errlog.closed:
            return ""
        fd = self.errlog.fileno()
        size = os.fstat(fd).st_size
        data = os.pread(fd, _STDERR_TAIL, max(0, size - _STDERR_TAIL))
        return data.decode("utf-8", "replace").strip()

    @contextlib.asynccontextmanager
    async def transport(self) -> AsyncIterator[tuple[Any, Any]]:
        """The SDK transport of the server's kind, its read stream watched."""
        spec = self.server.spec
        kind = spec.kind
        if kind == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            assert spec.command is not None
            self.errlog = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            params = StdioServerParameters(
                command=spec.command, args=spec.args, env=spec.env or None, cwd=spec.cwd
            )
            async with stdio_client(params, errlog=self.errlog) as (read, write):
                yield _WatchedStream(read, self), write
            return
        import httpx2

        assert spec.url is not None
        if kind == "sse":
            from mcp.client.sse import sse_client

            async with sse_client(spec.url, headers=spec.headers) as (read, write):
                yield _WatchedStream(read, self), write
            return
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=spec.headers, timeout=timeout) as http,
            streamable_http_client(spec.url, http_client=http) as (read, write),
        ):
            yield _WatchedStream(read, self), write

    async def on_message(self, message: Any) -> None:
        """The SDK's message handler: a changed tool list is fetched again (not here: the
        handler runs on the receive loop, which must not wait for a response)."""
        if isinstance(message, Exception):
            log.warning("MCP server %r: transport error: %s", self.server.name, message)
            if self.server.spec.kind != "stdio":
                self.mark_dead()  # reconnect on the next call
            return
        method = getattr(getattr(message, "root", message), "method", None)
        if method == "notifications/tools/list_changed":
            self.changed.set()

    async def own(self, ready: asyncio.Future[None]) -> None:
        """Connect, list the tools, follow changes until stopped (runs as its own task)."""
        import anyio
        from mcp import Client
        from mcp.types import Implementation
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        from glm_agent import __version__

        info = Implementation(name="glm-agent", version=__version__)
        try:
            async with Client(
                self.transport(), message_handler=self.on_message, client_info=info, cache=None
            ) as client:
                self.client = client
                await self.server.list_tools(client, first=True)
                ready.set_result(None)
                caps = client.server_capabilities.tools
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._refresh_on_change)
                    modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
                    if modern and caps is not None and caps.list_changed:
                        tg.start_soon(self._listen)
                    await self.stop.wait()
                    tg.cancel_scope.cancel()
        except Exception as e:
            if not ready.done():
                ready.set_exception(leaf(e))
            elif not self.stop.is_set():
                log.warning("MCP server %r: connection ended: %s", self.server.name, leaf(e))
        finally:
            self.alive = False
            if not ready.done():
                ready.set_exception(ToolServerError(self.server.name, "connection ended"))

    async def _refresh_on_change(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                await self.server.list_tools(self.client, first=False)
            except Exception as e:
                log.warning("MCP server %r: cannot refresh its tools: %s", self.server.name, e)

    async def _listen(self) -> None:
        try:
            async with self.client.listen(tools_list_changed=True) as sub:
                async for _ in sub:
                    self.changed.set()
        except Exception as e:  # a server that will not stream changes keeps its first list
            log.info("MCP server %r: no change stream: %s", self.server.name, e)

    async def close(self) -> None:
        """Stop the owning task (which leaves the SDK client: the process is stopped)."""
        self.stop.set()
        if self.task is not None and not self.task.done():
            done, _ = await asyncio.wait({self.task}, timeout=10.0)
            if not done:
                self.task.cancel()
                await asyncio.wait({self.task})
        if self.errlog is not None:
            self.errlog.close()


def stderr_note(conn: Connection) -> str:
    """The server's last stderr lines as the end of an error message (empty when none)."""
    tail = conn.stderr_tail()
    return f"; its last stderr output:\n{tail}" if tail else ""
