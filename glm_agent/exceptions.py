"""Every error glm-agent raises, as one tree.

```
ModelRetry                      not an error of the run: a signal inside the loop that the model
├── ToolArgumentsError          must try again; the message is written back to it
├── UnknownToolError            a tool name that is not registered (with did-you-mean)
└── OutputValidationError       a final answer that does not fit the output type

ToolRefused                     a tool's business answer "no" (an order that has shipped cannot
                                be cancelled): an outcome to explain, not a mistake to retry

GlmAgentError                   every error a caller of glm-agent may have to handle
├── UserError                   a usage mistake by the developer; fix the code or config
│   ├── ToolDefinitionError     a tool that cannot be described (missing docs, bad types)
│   ├── DuplicateToolError      two tools with one name in a registry
│   ├── ConfigError             a bad config file (names file, line and key)
│   └── MissingDependencyError  an optional dependency is not installed (names the extra)
├── RequestError                a request a service refused (the HTTP layer maps each kind)
│   ├── InvalidRequestError     malformed or out-of-range input (400)
│   │   └── MediaError          an image or video that cannot be taken: too large, of an
│   │                           unsupported type, unreadable, or for a model without vision
│   ├── AuthenticationError     no or wrong credentials: login, token, signature (401)
│   ├── PermissionDeniedError   credentials that do not reach this resource (403)
│   ├── NotFoundError           no such conversation, answer, ticket... (404)
│   ├── ConflictError           the resource's state forbids it now (409)
│   └── TooManyRequestsError    over a limit; `retry_after` seconds (429)
└── RunError                    the run failed
    ├── MaxStepsExceeded        more model turns than allowed
    ├── UsageLimitExceeded      tokens or requests over the limit
    ├── RetriesExhausted        the model kept making correctable mistakes past the budget
    ├── ModelError              the model backend failed
    │   └── ModelHTTPError      an HTTP backend answered with an error status
    ├── ToolServerError         an MCP tool server could not start, crashed or broke the protocol
    ├── ContextLengthError      a request that does not fit the model's context
    ├── SessionConflictError    a session changed since it was loaded (versioned append)
    └── RunCancelled            the run was cancelled
```

`ModelRetry` and `ToolRefused` stand outside `GlmAgentError` on purpose: handlers that catch
every glm-agent error (the HTTP error table, the CLI) must never swallow a signal meant for the
loop, and a tool that catches `GlmAgentError` around its own calls must not hide one.

Exceptions hold data and never log or do I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "ContextLengthError",
    "DuplicateToolError",
    "GlmAgentError",
    "InvalidRequestError",
    "MaxStepsExceeded",
    "MediaError",
    "MissingDependencyError",
    "ModelError",
    "ModelHTTPError",
    "ModelRetry",
    "NotFoundError",
    "OutputValidationError",
    "PermissionDeniedError",
    "RequestError",
    "RetriesExhausted",
    "RunCancelled",
    "RunError",
    "SessionConflictError",
    "TooManyRequestsError",
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolRefused",
    "ToolServerError",
    "UnknownToolError",
    "UsageLimitExceeded",
    "UserError",
    "did_you_mean",
]


def did_you_mean(name: str, options: Sequence[str]) -> str | None:
    """The closest of `options` to `name`, if any is close enough to suggest."""
    matches = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


class GlmAgentError(Exception):
    """Base class of every error glm-agent raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- the model must retry ---------------------------------------------------------------------


class ModelRetry(Exception):
    """Raised (by a tool, a validator or the loop) to ask the model to try again.

    The message is written back to the model as the tool result or as a user turn.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ToolArgumentsError(ModelRetry):
    """The arguments of a tool call failed validation."""

    def __init__(self, tool_name: str, errors: Sequence[str]) -> None:
        self.tool_name = tool_name
        self.errors = list(errors)
        detail = "; ".join(self.errors)
        super().__init__(f"invalid arguments for tool {tool_name!r}: {detail}")


class UnknownToolError(ModelRetry):
    """The model called a tool that is not registered."""

    def __init__(self, tool_name: str, valid_names: Sequence[str]) -> None:
        self.tool_name = tool_name
        self.valid_names = sorted(valid_names)
        guess = did_you_mean(tool_name, self.valid_names)
        hint = f"; did you mean {guess!r}?" if guess else ""
        names = ", ".join(self.valid_names) or "(none)"
        super().__init__(f"unknown tool {tool_name!r}{hint} tools: {names}")


class OutputValidationError(ModelRetry):
    """The final answer did not validate against the agent's output type."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("the answer does not match the required output: " + "; ".join(errors))


class ToolRefused(Exception):
    """Raised by a tool that declines what it was asked, for a reason the customer should hear.

    The model is told `{"error": code, "message": message, **facts}` as JSON, and the support
    bot and the offline model render it with the tool's `refused.<code>` template in the
    customer's language. It does not count against the retry budget.

    Args:
        code: A stable reason code (`already_shipped`, `outside_return_window`...).
        message: A short explanation in plain words, for the model.
        **facts: Values the explanation may need (`order_id`, `status`...).
    """

    def __init__(self, code: str, message: str = "", **facts: object) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message
        self.facts = facts

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


# --- usage mistakes ---------------------------------------------------------------------------


class UserError(GlmAgentError):
    """A usage mistake by the developer: the code or configuration must change."""


class ToolDefinitionError(UserError):
    """A tool cannot be described to the model (missing docstring entries, bad types...)."""


class DuplicateToolError(UserError):
    """Two tools with the same name in one registry."""

    def __init__(self, name: str, *, owners: Sequence[str] = ()) -> None:
        self.name = name
        self.owners = list(owners)
        """Where each tool of that name comes from (e.g. two MCP servers), when known."""
        detail = f" (from {' and from '.join(self.owners)})" if self.owners else ""
        hint = "; give an MCP server a `prefix`" if any("MCP" in o for o in self.owners) else ""
        super().__init__(
            f"duplicate tool name {name!r}{detail}: tool names must be unique in a registry{hint}"
        )


class ConfigError(UserError):
    """A configuration file is invalid. Names the file, line and key where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        where = ""
        if path is not None:
            where = path if line is None else f"{path}:{line}"
        if key:
            where = f"{where} ({key})" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class MissingDependencyError(UserError):
    """An optional dependency is missing; the message says which extra installs it."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        why = f" for {purpose}" if purpose else ""
        super().__init__(
            f'{package} is required{why}; install it with: pip install "glm-agent[{extra}]"'
        )


# --- refused requests ---------------------------------------------------------------------


class RequestError(GlmAgentError):
    """A request that a service (the support bot, its console, a channel) refuses.

    Business code raises these; the HTTP layer maps each kind to its status in one table.

    Args:
        message: What was wrong, for the caller.
        code: A stable machine-readable code (`conversation_not_found`, `bad_signature`...).
        param: The request field at fault, when there is one.
    """

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


class InvalidRequestError(RequestError):
    """Malformed or out-of-range input."""


class MediaError(InvalidRequestError):
    """An image or video that cannot be taken (`code` says why: `image_too_large`,
    `unsupported_media_type`, `invalid_image`, `too_many_images`, `model_without_vision`...)."""


class AuthenticationError(RequestError):
    """No credentials, or wrong ones (a console login, a customer token, a signature)."""


class PermissionDeniedError(RequestError):
    """Valid credentials that do not reach this resource."""


class NotFoundError(RequestError):
    """No such resource (for this tenant)."""


class ConflictError(RequestError):
    """The resource's current state forbids the request."""


class TooManyRequestsError(RequestError):
    """Over a limit; try again after `retry_after` seconds."""

    def __init__(
        self, message: str, *, retry_after: float, code: str | None = "rate_limited"
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


# --- run failures -----------------------------------------------------------------------------


class RunError(GlmAgentError):
    """The run failed; the partial transcript is attached when there is one."""

    def __init__(self, message: str, *, messages: Sequence[object] | None = None) -> None:
        super().__init__(message)
        self.messages = list(messages) if messages is not None else []


class MaxStepsExceeded(RunError):
    """The model took more turns than `max_steps` allows."""


class UsageLimitExceeded(RunError):
    """Tokens or requests went over a usage limit."""


class RetriesExhausted(RunError):
    """The model kept making correctable mistakes past the retry budget."""


class ModelError(RunError):
    """The model backend failed."""


class ModelHTTPError(ModelError):
    """An HTTP model backend answered with an error status."""

    def __init__(self, status_code: int, body: str, *, model: str = "") -> None:
        self.status_code = status_code
        self.body = body
        self.model = model
        short = body if len(body) <= 500 else body[:500] + "..."
        super().__init__(f"model {model or '(unnamed)'} answered HTTP {status_code}: {short}")


class ToolServerError(RunError):
    """An MCP server that tools come from could not be started or reached, crashed, or answered
    outside the protocol. Names the server and how it is started (command or URL)."""

    def __init__(self, server: str, message: str) -> None:
        self.server = server
        super().__init__(f"MCP server {server!r}: {message}")


class ContextLengthError(RunError):
    """A request does not fit the model's context window or the device's memory."""

    def __init__(self, message: str, *, needed: int | None = None, limit: int | None = None):
        self.needed = needed
        self.limit = limit
        super().__init__(message)


class SessionConflictError(RunError):
    """Another worker appended to a session after it was loaded; reload it and try again."""

    def __init__(self, tenant: str, session_id: str, *, expected: int, actual: int) -> None:
        self.tenant = tenant
        self.session_id = session_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"session {session_id!r} of tenant {tenant!r} is at version {actual}, not the "
            f"expected {expected}: another worker appended to it; reload the session and retry"
        )


class RunCancelled(RunError):
    """The run was cancelled before it finished."""
