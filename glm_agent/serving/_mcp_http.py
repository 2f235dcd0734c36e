"""glm-agent's MCP server over Streamable HTTP, behind the server's API keys: every request
carries `Authorization: Bearer <key>` (unless the server has no keys), needs the `runs` scope,
counts against the key's rate limit, and runs as the key's tenant."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from glm_agent.serving._config import ApiKey, ServerConfig
from glm_agent.serving._errors import HTTPProblem, error_body
from glm_agent.serving._mcp_server import MCPExposure, mcp_server
from glm_agent.serving._middleware import ASGIApp, Receive, Scope, Send
from glm_agent.serving._state import ServerState

__all__ = ["MCP_SCOPE", "KeyCheck", "MCPHttp", "mcp_http_app", "serve_mcp_stdio"]

MCP_SCOPE = "runs"
"""The API-key scope MCP calls need: they run tools and agents."""


class KeyCheck:
    """ASGI: authenticate each HTTP request by its bearer key (401 / 403 / 429 in OpenAI's
    error shape otherwise) and record the key's tenant in the request state."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        client = (scope.get("client") or ("", 0))[0]
        try:
            key = self.state.authenticate(token, MCP_SCOPE, client)
        except HTTPProblem as problem:
            body = json.dumps(error_body(problem)).encode()
            extra = [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
            await send(
                {
                    "type": "http.response.start",
                    "status": problem.status,
                    "headers": [(b"content-type", b"application/json"), *extra],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        state = scope.setdefault("state", {})
        state["tenant"], state["key"] = key.tenant, key.label
        await self.app(scope, receive, send)


class MCPHttp:
    """The Streamable HTTP endpoint of an `MCPExposure`: an ASGI app behind the API keys
    (`endpoint`, to route at a path) and the lifespan that runs its sessions (`lifespan`).

    Args:
        exposure: What the server offers.
        config: Server settings (keys, rate limit).
        keys: API keys (default: those of `config`; none: an open server, tenant `default`).
        host: The host it is served on (a localhost name turns on the SDK's DNS-rebinding check).
        name: The server's name, as MCP clients see it.
        close: Whether leaving the lifespan closes what the exposure holds (its agents and
            registry); a server that shares its agents with other routes closes them itself.
        state: The state of the server it is part of (its keys and their rate-limit buckets);
            default: one of its own, from `config` and `keys`.
    """

    def __init__(
        self,
        exposure: MCPExposure,
        *,
        config: ServerConfig | None = None,
        keys: Sequence[ApiKey] | None = None,
        host: str = "127.0.0.1",
        name: str = "glm-agent",
        close: bool = True,
        state: ServerState | None = None,
    ) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp

        config = config or ServerConfig()
        if state is None:
            state = ServerState.build([], {}, config, list(config.keys if keys is None else keys))
        server = mcp_server(exposure, name=name)
        # Builds the SDK's session manager with its transport-security defaults for `host`.
        server.streamable_http_app(host=host)
        self._manager = server.session_manager
        self._exposure, self._close = exposure, close
        self.endpoint: ASGIApp = KeyCheck(StreamableHTTPASGIApp(self._manager), state)
        """The endpoint, as an ASGI app (route it at one path)."""

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the MCP sessions while the server runs; stop them (and the exposure) after."""
        async with self._manager.run():
            try:
                yield
            finally:
                if self._close:
                    await self._exposure.aclose()


def mcp_http_app(
    exposure: MCPExposure,
    *,
    config: ServerConfig | None = None,
    keys: Sequence[ApiKey] | None = None,
    path: str = "/mcp",
    host: str = "127.0.0.1",
    name: str = "glm-agent",
) -> Any:
    """An ASGI app serving `exposure` over Streamable HTTP at `path`, behind the API keys.

    Args:
        exposure: What the server offers.
        config: Server settings (keys, rate limit); default: open (tenant `default`).
        keys: API keys (default: those of `config`).
        path: Where the MCP endpoint is.
        host: The host it is served on (localhost names turn on the SDK's DNS-rebinding check).
        name: The server's name, as MCP clients see it.
    """
    from starlette.applications import Starlette
    from starlette.routing import Route

    http = MCPHttp(exposure, config=config, keys=keys, host=host, name=name)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with http.lifespan():
            yield

    return Starlette(routes=[Route(path, endpoint=http.endpoint)], lifespan=lifespan)


async def serve_mcp_stdio(exposure: MCPExposure, *, name: str = "glm-agent") -> None:
    """Serve `exposure` over this process's stdin / stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    server = mcp_server(exposure, name=name)
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await exposure.aclose()
