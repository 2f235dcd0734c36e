"""`TraceRequests`: one SERVER span per HTTP request, continuing the caller's `traceparent`.

Plain ASGI, outermost of our middleware, so that the whole request (the gate, the routes, a
streamed response to its last byte) runs under the span, and every run, model request and tool
call the request starts is part of the caller's trace. With tracing off it only passes the
request through, and so it does when an HTTP instrumentation already traces the request (recent
FastAPI releases do natively, as does `opentelemetry-instrumentation-asgi`): one request, one
SERVER span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from glm_agent import tracing

__all__ = ["TraceRequests"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _traced_already() -> bool:
    from opentelemetry.trace import SpanKind

    return getattr(tracing.current_span(), "kind", None) == SpanKind.SERVER


class TraceRequests:
    """ASGI middleware tracing each HTTP request (`app.add_middleware(TraceRequests)`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled() or _traced_already():
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        client = scope.get("client")
        attributes = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "client.address": client[0] if client else None,
            "user_agent.original": headers.get("user-agent"),
        }
        parent = tracing.extract(headers)
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        with tracing.span(method, attributes, kind="server", context=parent) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if template:
                    span.set_attribute("http.route", template)
                    span.update_name(f"{method} {template}")
                if status:
                    span.set_attribute("http.response.status_code", status[0])
                    if status[0] >= 500:
                        tracing.set_error(span, str(status[0]), f"HTTP {status[0]}")
