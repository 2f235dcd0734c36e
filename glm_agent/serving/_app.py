"""`create_app`: the FastAPI application (OpenAI-compatible API, agent API, operations)."""

# No `from __future__ import annotations`: FastAPI reads these route signatures at run time,
# including aliases local to the function that builds the app.
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from glm_agent.agent import Agent
from glm_agent.exceptions import GlmAgentError
from glm_agent.models.base import ChatModel
from glm_agent.serving._config import ApiKey, ServerConfig
from glm_agent.serving._errors import HTTPProblem, error_body, problem_for
from glm_agent.serving._middleware import Gate
from glm_agent.serving._schema import ErrorResponse
from glm_agent.serving._state import ServedAgent, ServerState
from glm_agent.serving._tracing import TraceRequests

__all__ = ["create_app"]

log = logging.getLogger("glm_agent.serving")
_ERROR_STATUSES = {
    400: "Invalid request",
    401: "Missing or invalid API key",
    403: "The key lacks the scope",
    404: "Unknown model, agent or session",
    413: "Body too large",
    429: "Rate limit exceeded (see Retry-After)",
    500: "Server error",
    502: "The model backend failed",
}


def _problem_response(problem: HTTPProblem) -> JSONResponse:
    return JSONResponse(error_body(problem), status_code=problem.status, headers=problem.headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error becomes OpenAI's error shape here (the status comes from `problem_for`)."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        problem = problem_for(exc)
        if problem.status >= 500:
            log.error("request failed", exc_info=exc)
        return _problem_response(problem)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            at = first.get("loc", ("body", "?"))[-1]
            why = first.get("ctx", {}).get("error", "JSON decode error")
            problem = HTTPProblem(
                400, f"the body is not valid JSON (at character {at}): {why}", code="bad_json"
            )
            return _problem_response(problem)
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid body"
        return _problem_response(HTTPProblem(400, message, param=where or None))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        problem = HTTPProblem(
            exc.status_code, str(exc.detail), code=codes.get(exc.status_code, "http_error")
        )
        return _problem_response(problem)

    app.add_exception_handler(HTTPProblem, on_problem)
    app.add_exception_handler(GlmAgentError, on_problem)
    app.add_exception_handler(TimeoutError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def create_app(
    agents: Sequence[Agent[Any] | ServedAgent] = (),
    *,
    models: Mapping[str, ChatModel | str] | None = None,
    config: ServerConfig | None = None,
    keys: Sequence[ApiKey] | None = None,
    close_stores: bool = False,
    support: Any = None,
) -> FastAPI:
    """The HTTP application serving `agents` (and plain `models`).

    Args:
        agents: Agents, each served under its name (as an OpenAI `model` and under
            /v1/agents/{name}).
        models: Plain models by name (over `config.models`): requests to them pass client
            tools through.
        config: Server settings (keys, limits, CORS); default: open, no CORS.
        keys: API keys; default: those of `config` (none: an open server, tenant `default`).
        close_stores: Close the agents' session stores at shutdown (when the app owns them).
        support: A `SupportBot`: its routes (/v1/support, /v1/console, /v1/channels), the
            widget and console pages, and its agent served through it at every door.

    Returns:
        A FastAPI app; `app.state.glm` holds its `ServerState`.
    """
    from glm_agent.models.resolve import resolve_model

    config = config or ServerConfig()
    served = [a if isinstance(a, ServedAgent) else ServedAgent(a) for a in agents]
    if support is not None and all(s.agent is not support.agent for s in served):
        served.append(ServedAgent(support.agent))
    wanted: dict[str, ChatModel | str] = {**config.models, **(models or {})}
    chat_models = {n: resolve_model(m) for n, m in wanted.items()}
    state = ServerState.build(
        served, chat_models, config, list(config.keys if keys is None else keys)
    )
    if state.keys.open:
        log.warning(
            "no API keys configured: every route is open to whoever reaches this server, as "
            "tenant 'default' (fine on localhost; set server.keys anywhere else)"
        )

    mcp = _mcp_endpoint(served, config, state) if config.mcp else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.drain_event()
        state.ready = True
        restore = _chain_exit_signals(state)
        try:
            if mcp is None:
                yield
            else:
                async with mcp.lifespan():
                    yield
        finally:
            restore()
            state.begin_shutdown()
            # The agents' MCP tool servers stop with the server (a later run restarts them).
            for a in served:
                for source in a.agent.tools.tool_sources:
                    await source.aclose()
            if close_stores:
                stores = {id(a.agent.memory): a.agent.memory for a in served if a.agent.memory}
                for store in stores.values():
                    await store.aclose()

    app = FastAPI(
        title="glm-agent",
        version=_version(),
        description="OpenAI-compatible API and agent API of glm-agent.",
        lifespan=lifespan,
        responses={
            status: {"model": ErrorResponse, "description": text}
            for status, text in _ERROR_STATUSES.items()
        },
    )
    state.support = support
    app.state.glm = state
    _install_error_handlers(app)

    from glm_agent.serving._agents import router as agents_router
    from glm_agent.serving._openai_routes import router as openai_router
    from glm_agent.serving._ops_routes import router as ops_router

    app.include_router(ops_router)
    app.include_router(openai_router)
    app.include_router(agents_router)
    if mcp is not None:
        from starlette.routing import Route

        app.router.routes.append(Route("/mcp", endpoint=mcp.endpoint, include_in_schema=False))
    if support is not None:
        from glm_agent.serving.bot._routes import router as support_router
        from glm_agent.serving.web import create_web_router

        app.include_router(support_router)
        app.include_router(create_web_router())
    _document_errors_as_sent(app)
    app.add_middleware(Gate, state=state)
    app.add_middleware(TraceRequests)  # outermost: the whole request runs under its span
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Session-Id",
                "X-Request-Id",
                "X-Customer-Token",  # the widget's conversation token
                "Last-Event-ID",  # the widget's event-stream resume
            ],
            expose_headers=["X-Request-Id", "Retry-After"],
        )
    return app


def _mcp_endpoint(served: Sequence[ServedAgent], config: ServerConfig, state: ServerState) -> Any:
    """The agents and their knowledge bases over MCP, behind the server's keys."""
    from glm_agent.serving._mcp_http import MCPHttp
    from glm_agent.serving._mcp_server import MCPExposure

    knowledge = {a.name: a.agent.knowledge for a in served if a.agent.knowledge is not None}
    # Support agents are reached through their bot only; their knowledge may be searched.
    exposure = MCPExposure(agents=[a.agent for a in served if a.mcp], knowledge=knowledge)
    # The agents are the app's: it closes them (not the MCP endpoint). Any host: the API keys
    # guard this endpoint, as they guard every other (with the same rate-limit buckets).
    return MCPHttp(exposure, config=config, host="", close=False, state=state)


def _document_errors_as_sent(app: FastAPI) -> None:
    """Drop FastAPI's default 422 responses from the OpenAPI document: validation errors are
    sent as 400 in OpenAI's shape (documented app-wide), so 422 never happens."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for methods in document.get("paths", {}).values():
                for operation in methods.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _chain_exit_signals(state: ServerState) -> Callable[[], None]:
    """Make SIGTERM / SIGINT end open streams first, then do what the server did before.

    uvicorn installs its exit handlers before the app starts, in every worker process; the app
    learns of a shutdown only when connections are already draining, too late to end streams
    that would otherwise hold the shutdown up. Only possible from the main thread.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: Any) -> None:
        state.request_shutdown()
        before = previous.get(signal.Signals(sig))
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL and sig == signal.SIGINT:
            raise KeyboardInterrupt

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if before is not None:
                signal.signal(sig, before)

    return restore


def _version() -> str:
    from glm_agent import __version__

    return __version__
