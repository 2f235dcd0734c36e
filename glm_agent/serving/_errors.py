"""The one place errors become HTTP statuses and OpenAI-shaped error bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glm_agent._scrub import scrub
from glm_agent.exceptions import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    ContextLengthError,
    GlmAgentError,
    InvalidRequestError,
    MaxStepsExceeded,
    MissingDependencyError,
    ModelError,
    ModelHTTPError,
    NotFoundError,
    PermissionDeniedError,
    RequestError,
    RetriesExhausted,
    RunCancelled,
    SessionConflictError,
    ToolDefinitionError,
    ToolServerError,
    TooManyRequestsError,
    UsageLimitExceeded,
    UserError,
)

__all__ = ["HTTPProblem", "error_body", "problem_for"]


@dataclass
class HTTPProblem(Exception):
    """An error of the HTTP layer itself (auth, limits, unknown names), with its status."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


# Ordered: the first matching class wins, so subclasses come before their bases.
_TABLE: list[tuple[type[BaseException], int, str, str]] = [
    (InvalidRequestError, 400, "invalid_request_error", "invalid_request"),
    (AuthenticationError, 401, "authentication_error", "unauthorized"),
    (PermissionDeniedError, 403, "permission_error", "forbidden"),
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (ConflictError, 409, "conflict_error", "conflict"),
    (TooManyRequestsError, 429, "rate_limit_error", "rate_limited"),
    (ContextLengthError, 400, "invalid_request_error", "context_length_exceeded"),
    (SessionConflictError, 409, "conflict_error", "session_conflict"),
    (UsageLimitExceeded, 422, "run_error", "usage_limit_exceeded"),
    (MaxStepsExceeded, 422, "run_error", "max_steps_exceeded"),
    (RetriesExhausted, 422, "run_error", "retries_exhausted"),
    (RunCancelled, 503, "server_error", "run_cancelled"),
    (ModelHTTPError, 502, "upstream_error", "model_http_error"),
    (ModelError, 502, "upstream_error", "model_error"),
    (ToolServerError, 502, "upstream_error", "tool_server_error"),
    # The server's own configuration is wrong: the client can do nothing about it.
    (ConfigError, 500, "server_error", "config_error"),
    (ToolDefinitionError, 500, "server_error", "tool_definition_error"),
    (MissingDependencyError, 501, "server_error", "missing_dependency"),
    (UserError, 400, "invalid_request_error", "invalid_request"),
    (GlmAgentError, 500, "server_error", "run_error"),
]


def problem_for(exc: BaseException) -> HTTPProblem:
    """The status and OpenAI error fields for any exception.

    Errors outside glm-agent's tree become a 500 whose message hides the details (they may hold
    secrets such as connection strings); the log has them, keyed by the request id.
    """
    if isinstance(exc, HTTPProblem):
        return exc
    for cls, status, kind, code in _TABLE:
        if isinstance(exc, cls):
            problem = HTTPProblem(status, scrub(str(exc)), kind, code)
            if isinstance(exc, RequestError):
                problem.code = exc.code or code
                problem.param = exc.param
            if isinstance(exc, TooManyRequestsError):
                problem.headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
            return problem
    if isinstance(exc, TimeoutError):
        return HTTPProblem(504, "the run took longer than allowed", "server_error", "timeout")
    return HTTPProblem(500, "internal server error", "server_error", "internal_error")


def error_body(problem: HTTPProblem) -> dict[str, Any]:
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {
        "error": {
            "message": problem.message,
            "type": problem.type,
            "param": problem.param,
            "code": problem.code,
        }
    }
