"""`create_app`: the FastAPI application (OpenAI-compatible API, agent API, operations)."""

# No `from __future__ import annotations`: FastAPI reads these route signatures at run time,
# including aliases local to the function that builds the app.
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from glm_agent.agent import Agent
from glm_agent.exceptions import GlmAgentError
from glm_agent.models.base import ChatModel
from glm_agent.serving._chat import chat_completion
from glm_agent.serving._config import ApiKey, ServerConfig
from glm_agent.serving._errors import HTTPProblem, error_body, problem_for
from glm_agent.serving._middleware import Gate
from glm_agent.serving._schema import ChatCompletionRequest, EmbeddingRequest, ErrorResponse
from glm_agent.serving._state import ServedAgent, ServerState
from glm_agent.serving._tracing import TraceRequests

__all__ = ["create_app"]

log = logging.getLogger("glm_agent.serving")
Dependency = Callable[..., Awaitable[ApiKey]]
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
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer gak_...`")


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


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def create_app(
    agents: Sequence[Agent[Any] | ServedAgent] = (),
    *,
    models: Mapping[str, ChatModel | str] | None = None,
    config: ServerConfig | None = None,
    keys: Sequence[ApiKey] | None = None,
    close_stores: bool = False,
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

    Returns:
        A FastAPI app; `app.state.glm` holds its `ServerState`.
    """
    from glm_agent.models.resolve import resolve_model

    config = config or ServerConfig()
    served = [a if isinstance(a, ServedAgent) else ServedAgent(a) for a in agents]
    wanted: dict[str, ChatModel | str] = {**config.models, **(models or {})}
    chat_models = {n: resolve_model(m) for n, m in wanted.items()}
    state = ServerState.build(
        served, chat_models, config, list(config.keys if keys is None else keys)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.drain_event()
        state.ready = True
        restore = _chain_exit_signals(state)
        try:
            yield
        finally:
            restore()
            state.begin_shutdown()
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
    app.state.glm = state
    _install_error_handlers(app)

    def need(scope: str) -> Dependency:
        async def dependency(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        ) -> ApiKey:
            token = credentials.credentials if credentials else None
            client = request.client.host if request.client else ""
            key = state.authenticate(token, scope, client)
            request.state.tenant = key.tenant
            request.state.key = key.label
            return key

        return dependency

    chat_key = Annotated[ApiKey, Security(need("chat"))]

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> Response:
        """Readiness: started and not shutting down (503 otherwise)."""
        body = {"status": "ready" if state.ready else "not ready", "agents": sorted(state.agents)}
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics of this app."""
        text, content_type = state.metrics.render()
        return Response(text, media_type=content_type)

    @app.get("/v1/models", tags=["openai"])
    async def list_models(key: chat_key) -> dict[str, Any]:
        """Agents and plain models, as OpenAI models."""
        names = [*sorted(state.agents), *sorted(state.models)]
        return {"object": "list", "data": [_model_card(n) for n in names]}

    @app.get("/v1/models/{model_id}", tags=["openai"])
    async def get_model(model_id: str, key: chat_key) -> dict[str, Any]:
        """One agent or plain model."""
        if model_id not in state.agents and model_id not in state.models:
            raise HTTPProblem(404, f"the model {model_id!r} does not exist", code="model_not_found")
        return _model_card(model_id)

    @app.post("/v1/chat/completions", tags=["openai"], response_model=None)
    async def chat_completions(
        body: ChatCompletionRequest,
        key: chat_key,
        x_session_id: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Response:
        """An agent run (its tools run here) or a plain model turn (client tools returned)."""
        if not state.ready and state.draining is not None and state.draining.is_set():
            raise HTTPProblem(503, "the server is shutting down", "server_error", "shutting_down")
        out = await chat_completion(state, body, key, x_session_id)
        if isinstance(out, dict):
            return JSONResponse(out)
        return _stream(out)

    @app.post("/v1/embeddings", tags=["openai"])
    async def embeddings(body: EmbeddingRequest, key: chat_key) -> dict[str, Any]:
        """Embeddings from the knowledge base embedder of the agent named by `model`."""
        from glm_agent.serving._knowledge import embed

        return await embed(state, body)

    from glm_agent.serving._agents import add_agent_routes

    add_agent_routes(app, state, need, _stream)

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


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "glm-agent"}


def _version() -> str:
    from glm_agent import __version__

    return __version__
