"""The ASGI layer in front of the routes: request ids, JSON access logs, metrics, body limits
and the last-resort 500. Plain ASGI (not BaseHTTPMiddleware) so streams pass through untouched."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from glm_agent.serving._errors import HTTPProblem, error_body, problem_for
from glm_agent.serving._state import ServerState

__all__ = ["Gate", "JsonLogFormatter"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("glm_agent.serving")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_UPLOAD_PATHS = ("/knowledge/documents",)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `extra` fields."""

    _SKIP = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in record.__dict__.items() if k not in self._SKIP})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _TooLarge(BaseException):
    """A body over the limit. A BaseException so that body parsers' `except Exception` (which
    would turn it into a 400) lets it through to the gate."""


class Gate:
    """Wraps the app: one request id per request (echoed as `X-Request-Id`), body limits (413),
    metrics and one access-log line, and a JSON 500 for anything the routes did not handle."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope.get("path", "")
        cfg = self.state.config
        limit = cfg.max_upload_bytes if path.endswith(_UPLOAD_PATHS) else cfg.max_body_bytes
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > limit:
                raise _TooLarge
            await self.app(scope, receive_wrapper, send_wrapper)
        except (_TooLarge, Exception) as e:
            if isinstance(e, _TooLarge):
                problem = HTTPProblem(
                    413, f"request body over {limit} bytes", code="request_too_large"
                )
            else:
                problem = problem_for(e)
                log.error(
                    "unhandled error", exc_info=e, extra={"request_id": request_id, "path": path}
                )
            if started:  # too late for a status; the stream already says how it ended
                return
            await self._send_problem(send_wrapper, problem)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - start
            metrics = self.state.metrics
            metrics.requests.labels(scope.get("method", ""), label, str(status)).inc()
            metrics.latency.labels(label).observe(seconds)
            if status >= 400:
                metrics.errors.labels(str(status)).inc()
            if log.isEnabledFor(logging.INFO):
                state = scope.get("state") or {}
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                        "tenant": state.get("tenant"),
                        "key": state.get("key"),
                    },
                )

    @staticmethod
    async def _send_problem(send: Send, problem: HTTPProblem) -> None:
        body = json.dumps(error_body(problem)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *[(k.lower().encode(), v.encode()) for k, v in problem.headers.items()],
        ]
        await send({"type": "http.response.start", "status": problem.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
