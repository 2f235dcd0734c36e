"""`MCPServer`: the tools of a Model Context Protocol server, as a tool source.

Built on the official `mcp` SDK (its `Client` and transports); no protocol code here. One server
object holds at most one connection (`_mcp_connection`), opened by the first run that needs it
(`start`, called by `ToolRegistry.ready`) and shared by every run after it: calls from
concurrent runs go over the same connection at once. A server process that exits is noticed
when its output ends: a call in flight then fails with a `ToolServerError` naming the server and
its last stderr lines, and the next call or run starts the server again.

Each tool is an ordinary `Tool` (definition from the server's `inputSchema`, arguments checked
against it before the call), so every policy applies to it as to any other tool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from glm_agent.exceptions import (
    MissingDependencyError,
    ModelRetry,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolServerError,
    UserError,
)
from glm_agent.messages import ToolDefinition
from glm_agent.tools._mcp_connection import Connection, stderr_note
from glm_agent.tools._mcp_spec import MCPServerSpec, Transport, merged_policy
from glm_agent.tools._tool import ArgsValidator, Tool, ToolPolicy, json_schema_validator

__all__ = ["MCPServer"]

log = logging.getLogger("glm_agent.tools.mcp")

_MAX_PAGES = 100
_CONNECTION_CLOSED = -32000  # mcp_types.CONNECTION_CLOSED, without importing the SDK here


def _require_mcp() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(e.name or "mcp", "mcp", "MCP servers") from None


def _parameters(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """A server's `inputSchema` as tool parameters: the `$schema` tag dropped (it only costs
    context), `type: object` and `properties` always present."""
    out = {k: v for k, v in (schema or {}).items() if k != "$schema"}
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out


def _validator(schema: dict[str, Any], raw: Mapping[str, Any] | None, name: str) -> ArgsValidator:
    """Arguments checked against the server's own schema (its `$schema` dialect kept); a schema
    that is not valid JSON Schema is left to the server to enforce."""
    try:
        return json_schema_validator(dict(raw) if raw else schema, name)
    except ToolDefinitionError:
        log.warning("MCP tool %r has an invalid inputSchema; the server checks its arguments", name)
        return lambda args: args


class _RemoteTool:
    """The callable of one MCP tool: calls it on the server."""

    def __init__(self, server: MCPServer, remote: str, exposed: str, policy: ToolPolicy) -> None:
        self.server, self.remote, self.exposed, self.policy = server, remote, exposed, policy

    async def __call__(self, **kwargs: Any) -> Any:
        return await self.server.call(self.remote, kwargs, exposed=self.exposed, policy=self.policy)


class MCPServer:
    """The tools of an MCP server, for an `Agent` or a `ToolRegistry` (a tool source).

    ```python
    files = MCPServer("files", command="npx", args=["@modelcontextprotocol/server-filesystem", "."])
    agent = Agent("glm-4.5", tools=[order_status, files])
    ```

    The server starts when a run first needs it (or on `await server.start()`), is shared by
    every run of the agent, is started again after it crashed, and stops on `aclose()` (of the
    server, its registry or its agent).

    Args:
        name: The server's name (in messages; unique among a registry's servers).
        command: The program that runs the server over stdio (give this or `url`).
        args: Its arguments.
        env: Environment variables set for it (over PATH, HOME and the like).
        cwd: Its working directory.
        url: The endpoint of a server reached over HTTP.
        transport: `stdio`, `streamable-http` or `sse` (default: inferred).
        headers: HTTP headers sent with every request.
        prefix: Put before each tool name with `_`, to avoid clashes.
        allowed_tools: Offer only these tools (the server's names).
        policy: The policy of every tool of the server.
        policies: Per tool (the server's name), policy keys that differ from `policy`.
        startup_timeout: Seconds to start the server and list its tools.
        spec: All of the above as one `MCPServerSpec` (instead of the keywords).
    """

    def __init__(
        self,
        name: str,
        *,
        command: str | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        url: str | None = None,
        transport: Transport | None = None,
        headers: dict[str, str] | None = None,
        prefix: str | None = None,
        allowed_tools: list[str] | None = None,
        policy: ToolPolicy | None = None,
        policies: dict[str, ToolPolicy] | None = None,
        startup_timeout: float = 30.0,
        spec: MCPServerSpec | None = None,
    ) -> None:
        if spec is None:
            options: dict[str, Any] = {
                "command": command,
                "args": args or [],
                "env": env or {},
                "cwd": str(cwd) if cwd is not None else None,
                "url": url,
                "transport": transport,
                "headers": headers or {},
                "prefix": prefix,
                "allowed_tools": allowed_tools,
                "policies": policies or {},
                "startup_timeout": startup_timeout,
            }
            if policy is not None:
                options["policy"] = policy
            spec = MCPServerSpec(**options)
        self.name = name
        """The server's name (in messages; unique among a registry's servers)."""
        self.spec = spec
        """How the server is reached and which tools are offered."""
        self.restarts = 0
        """How many times the server was started again after its connection ended."""
        self.listings = 0
        """How many times its tools were listed (at each start and each change)."""
        self._tools: dict[str, Tool] = {}
        self._conn: Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_spec(cls, name: str, spec: MCPServerSpec) -> MCPServer:
        """A server from its `MCPServerSpec` (an `mcp:` entry of a YAML file)."""
        return cls(name, spec=spec)

    @property
    def tools(self) -> Mapping[str, Tool]:
        """The server's tools by the name the model sees (empty until started)."""
        return self._tools

    @property
    def running(self) -> bool:
        """Whether a connection is open and alive."""
        return self._conn is not None and self._conn.alive

    async def start(self) -> None:
        """Start (or reach) the server and list its tools, unless it is running already.

        Raises:
            ToolServerError: It cannot be started, names a missing command, or did not answer
                within `startup_timeout`.
            UserError: `allowed_tools` or `policies` name a tool the server does not have.
        """
        await self._connection()

    async def aclose(self) -> None:
        """Stop the server (its tools stay listed; a call starts it again)."""
        if self._conn is None:
            return
        async with self._lock_here():
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close()

    async def __aenter__(self) -> MCPServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _lock_here(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed() and self.running:
                raise UserError(
                    f"MCP server {self.name!r} is connected on another event loop; use it from "
                    "that loop, or aclose() it there first"
                )
            # A closed loop took its connection (and the task owning it) with it.
            if self._conn is not None and self._conn.errlog is not None:
                self._conn.errlog.close()
            self._loop, self._lock, self._conn = loop, asyncio.Lock(), None
        assert self._lock is not None
        return self._lock

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is not None and conn.alive and self._loop is asyncio.get_running_loop():
            return conn
        async with self._lock_here():
            conn = self._conn
            if conn is not None and conn.alive:
                return conn
            if conn is not None:
                await conn.close()
                self.restarts += 1
                log.warning("MCP server %r: starting it again: %s", self.name, self.spec.describe())
            self._conn = await self._open()
            return self._conn

    async def _open(self) -> Connection:
        _require_mcp()
        conn = Connection(self)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        conn.task = asyncio.create_task(conn.own(ready), name=f"mcp-server-{self.name}")
        how = self.spec.describe()
        try:
            done, _ = await asyncio.wait({ready}, timeout=self.spec.startup_timeout)
        except BaseException:
            await conn.close()
            raise
        if not done:
            await conn.close()
            if ready.done() and not ready.cancelled():
                ready.exception()  # retrieved: the timeout below is the error that counts
            raise ToolServerError(
                self.name,
                f"{how} did not start and list its tools within {self.spec.startup_timeout:g} s"
                + stderr_note(conn),
            )
        error = ready.exception()
        if error is None:
            return conn
        note = stderr_note(conn)
        await conn.close()
        if isinstance(error, UserError | ToolServerError):
            raise error
        cwd = self.spec.cwd
        if isinstance(error, FileNotFoundError) and cwd is not None and error.filename == cwd:
            raise ToolServerError(
                self.name, f"its working directory {cwd!r} does not exist"
            ) from error
        if isinstance(error, FileNotFoundError) and self.spec.kind == "stdio":
            raise ToolServerError(
                self.name,
                f"cannot start command {self.spec.command!r}: not found (is it installed and on "
                f"PATH?); the server is started as: {how}",
            ) from error
        if getattr(error, "code", None) == _CONNECTION_CLOSED:
            ended = "exited" if self.spec.kind == "stdio" else "closed the connection"
            raise ToolServerError(self.name, f"{how} {ended} before it answered{note}") from error
        raise ToolServerError(
            self.name, f"cannot connect to {how}: {type(error).__name__}: {error}{note}"
        ) from error

    async def list_tools(self, client: Any, *, first: bool) -> None:
        """List the server's tools (every page) and replace the offered ones with them."""
        import anyio

        listed: list[Any] = []
        cursor: str | None = None
        with anyio.fail_after(self.spec.startup_timeout):
            for _ in range(_MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                listed += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
        self.listings += 1
        if first:
            self._check_names({t.name for t in listed})
        self._tools = self._build(listed)

    def _check_names(self, remote: set[str]) -> None:
        spec = self.spec
        named = [*(spec.allowed_tools or []), *spec.policies]
        for wanted in named:
            if wanted not in remote:
                from glm_agent.exceptions import did_you_mean

                guess = did_you_mean(wanted, sorted(remote))
                hint = f"; did you mean {guess!r}?" if guess else ""
                where = "allowed_tools" if wanted in (spec.allowed_tools or []) else "policies"
                raise UserError(
                    f"MCP server {self.name!r} has no tool {wanted!r} (named in {where}){hint} "
                    f"its tools: {', '.join(sorted(remote)) or '(none)'}"
                )

    def _build(self, listed: list[Any]) -> dict[str, Tool]:
        spec = self.spec
        out: dict[str, Tool] = {}
        origin: dict[str, str] = {}
        for t in listed:
            if spec.allowed_tools is not None and t.name not in spec.allowed_tools:
                continue
            exposed = spec.exposed_name(t.name)
            if exposed in origin:
                raise UserError(
                    f"MCP server {self.name!r}: its tools {origin[exposed]!r} and {t.name!r} "
                    f"both become {exposed!r}"
                )
            if len(exposed) > 64:
                log.warning("MCP server %r: tool %r skipped: name over 64", self.name, exposed)
                continue
            origin[exposed] = t.name
            parameters = _parameters(t.input_schema)
            definition = ToolDefinition(
                name=exposed,
                description=t.description or t.title or "",
                parameters=parameters,
            )
            old = self._tools.get(exposed)
            if old is not None and old.definition == definition:
                out[exposed] = old  # keeps its rate limiter and concurrency state
                continue
            policy = merged_policy(spec, t.name)
            out[exposed] = Tool(
                definition,
                _RemoteTool(self, t.name, exposed, policy),
                validator=_validator(parameters, t.input_schema, exposed),
                policy=policy,
            )
        return out

    async def call(
        self, remote: str, arguments: dict[str, Any], *, exposed: str, policy: ToolPolicy
    ) -> Any:
        """Call the server's tool `remote`; what the model reads comes back.

        Raises:
            ToolArgumentsError: The server refused the arguments.
            ModelRetry: The tool reported an error (`isError`) or the server answered the call
                with a protocol error.
            ToolServerError: The server could not be started, or its connection ended during
                the call (an idempotent tool is then tried once more on a fresh start).
        """
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, INVALID_PARAMS

        from glm_agent.tools._mcp_results import result_value

        for attempt in (1, 2):
            conn = await self._connection()
            try:
                result = await conn.client.call_tool(remote, arguments)
            except MCPError as e:
                if e.code == INVALID_PARAMS:
                    raise ToolArgumentsError(exposed, [e.message]) from None
                if e.code != CONNECTION_CLOSED and conn.alive:
                    raise ModelRetry(
                        f"tool {exposed!r} failed: MCP error {e.code}: {e.message}"
                    ) from None
                conn.mark_dead()
                if policy.idempotent and attempt == 1:
                    continue
                raise ToolServerError(
                    self.name,
                    f"the connection to {self.spec.describe()} ended during the call to "
                    f"{remote!r}; the server is started again on the next call" + stderr_note(conn),
                ) from None
            return result_value(result, exposed)
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return f"MCPServer({self.name!r}, {self.spec.describe()!r})"
