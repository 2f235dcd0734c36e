"""What routes get through `Depends`: the server's state, an authenticated API key, the
support bot; and `JsonRoute`, the route class of every API router (JSON bodies read by
`loads_json`). Every router is a module-level `APIRouter`; none closes over app objects."""

# No `from __future__ import annotations`: FastAPI reads these signatures at run time.
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response, Security
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from glm_agent.exceptions import NotFoundError
from glm_agent.serving._config import ApiKey
from glm_agent.serving._json import loads_json
from glm_agent.serving._state import ServerState

__all__ = ["JsonRoute", "State", "get_state", "get_support", "key_with", "sse_response"]


class _JsonRequest(Request):
    """A request whose JSON body is read by `loads_json` (FastAPI turns its errors into the
    400 "the body is not valid JSON (at character N): ...")."""

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = loads_json(await self.body())
        return self._strict_json


class JsonRoute(APIRoute):
    """The route class of every API router: request bodies that are JSON but not Unicode text (a
    lone surrogate escape) are refused before any field reaches a route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return strict


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer gak_...`")


def get_state(request: Request) -> ServerState:
    """The app's `ServerState` (set by `create_app`)."""
    state: ServerState = request.app.state.glm
    return state


State = Annotated[ServerState, Depends(get_state)]
"""A route parameter receiving the server's state."""


def key_with(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that authenticates the request's API key for `scope` (and rate-limits it)."""

    async def dependency(
        request: Request,
        state: State,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> ApiKey:
        token = credentials.credentials if credentials else None
        client = request.client.host if request.client else ""
        key = state.authenticate(token, scope, client)
        request.state.tenant = key.tenant
        request.state.key = key.label
        return key

    return dependency


def get_support(state: State) -> Any:
    """The support bot this server runs (404 on a server without one)."""
    if state.support is None:
        raise NotFoundError(
            "this server runs no support bot (put a support.yaml beside the agent.yaml)",
            code="no_support_bot",
        )
    return state.support


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    """A `text/event-stream` response over an async iterator of encoded events."""
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
