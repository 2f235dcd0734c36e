"""`Tool`: a definition bound to an implementation and a policy, and the `RunContext` it gets."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import jsonschema
from pydantic import BaseModel, ConfigDict, Field

from glm_agent.exceptions import ToolArgumentsError, ToolDefinitionError
from glm_agent.messages import Message, ToolDefinition, Usage
from glm_agent.tools._policy import Identity, PerCustomerLimit, Rule

__all__ = [
    "RunContext",
    "Tool",
    "ToolPolicy",
    "format_tool_result",
    "json_schema_validator",
]

DepsT = TypeVar("DepsT")

ArgsValidator = Callable[[dict[str, Any]], dict[str, Any]]
"""Validates and coerces decoded arguments into the keyword arguments of the implementation;
raises `ToolArgumentsError` naming each bad argument."""


@dataclass
class RunContext(Generic[DepsT]):
    """What a tool sees of the run that called it. Declare it as a tool's first parameter."""

    deps: DepsT
    """The dependencies the agent was run with (a DB handle, an HTTP client...)."""
    session_id: str | None = None
    """The conversation this run belongs to."""
    tenant: str | None = None
    """The tenant the session is scoped to."""
    messages: list[Message] = field(default_factory=list)
    """The transcript so far."""
    usage: Usage = field(default_factory=Usage)
    """Usage so far in this run."""
    step: int = 0
    """The current model turn (1-based)."""
    tool_name: str | None = None
    """Name of the tool being called."""
    tool_call_id: str | None = None
    """Id of the call being executed."""
    approved: bool = False
    """True when this call needed approval and was approved."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free-form per-run data (channel, conversation id...)."""
    identity: Identity | None = None
    """The verified customer the run acts for (set by the door from a signed channel, or by a
    tool whose policy `verifies_identity`); None: not verified. Never set from model output."""


class ToolPolicy(BaseModel):
    """How a tool may be called: limits and safety switches."""

    model_config = ConfigDict(extra="forbid")

    timeout: float | None = Field(default=60.0, gt=0)
    """Seconds one call may take; a call over it is cancelled and reported to the model."""
    max_retries: int | None = Field(default=None, ge=0)
    """Correctable failures allowed for this tool in one run (None: the agent's default)."""
    requires_approval: bool = False
    """Calls wait for the approval hook (approve, reject with a reason, or defer)."""
    idempotent: bool = False
    """Safe to repeat: transport failures may be retried."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Most calls of this tool running at once."""
    rate_limit: float | None = Field(default=None, gt=0)
    """Most calls per second (a token bucket of one second)."""
    redact: list[str] = Field(default_factory=list)
    """Argument names whose values are masked in logs and transcripts."""
    requires_identity: bool = False
    """Runs only for a verified customer (`RunContext.identity`); otherwise the model is told
    to verify the customer first, naming the tools that do."""
    verifies_identity: bool = False
    """A successful call verifies the customer: its result's `customer_id` (and the rest of it)
    becomes `RunContext.identity`."""
    facts: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    """`package.module:function` called before the call runs with those of its validated
    arguments it names; returns a dict of facts about the resource (its owner, its amount...).
    From Python, pass the function to `Tool(facts=...)` / `@tool(facts=...)` instead."""
    owner: str | None = None
    """The fact naming the resource's owner: the call runs only when it equals the verified
    customer. Without a facts function it is read from the tool's result (read-only tools), and
    a result that belongs to someone else is withheld."""
    rules: list[Rule] = Field(default_factory=list)
    """Rules on arguments, facts and result (`{if: facts.total > 2000, then: review}`)."""
    per_customer: PerCustomerLimit | None = None
    """Most successful calls per verified customer in a window."""


def _format_errors(errors: Sequence[jsonschema.ValidationError]) -> list[str]:
    out = []
    for e in sorted(errors, key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in e.absolute_path)
        if e.validator == "required":
            out.append(
                f"missing required argument: {e.message.split(chr(39))[1]!r}"
                if "'" in e.message
                else e.message
            )
        elif e.validator == "additionalProperties":
            out.append(f"unexpected argument: {e.message}")
        else:
            out.append(f"{path or '(arguments)'}: {e.message}")
    return out


def json_schema_validator(parameters: dict[str, Any], tool_name: str) -> ArgsValidator:
    """A validator that checks arguments against a JSON Schema (for YAML and HTTP tools)."""
    cls = jsonschema.validators.validator_for(parameters, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(parameters)
    except jsonschema.SchemaError as e:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: invalid parameter schema: {e.message}"
        ) from e
    validator = cls(parameters)

    def validate(args: dict[str, Any]) -> dict[str, Any]:
        errors = list(validator.iter_errors(args))
        if errors:
            raise ToolArgumentsError(tool_name, _format_errors(errors))
        return args

    return validate


def format_tool_result(value: Any) -> str:
    """A tool's return value as text for the model (JSON for structured values)."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


class _RateLimiter:
    """A token bucket: `rate` calls per second, bursts of at most `rate` (at least one)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class Tool:
    """A tool: its definition for the model, its implementation, and its policy.

    Args:
        definition: Name, description and JSON schema shown to the model.
        function: The implementation, sync or async. Called with the validated arguments as
            keyword arguments, preceded by the `RunContext` when `takes_ctx` is true.
        validator: Validates and coerces arguments (default: the JSON schema).
        policy: Timeout, concurrency, rate limit, approval, redaction, identity and rules.
        takes_ctx: Whether `function` takes a `RunContext` first.
        facts: Looks up facts about the resource a call touches, from its validated arguments
            (sync or async; see `ToolPolicy.facts`).
    """

    def __init__(
        self,
        definition: ToolDefinition,
        function: Callable[..., Any] | Callable[..., Awaitable[Any]],
        *,
        validator: ArgsValidator | None = None,
        policy: ToolPolicy | None = None,
        takes_ctx: bool = False,
        facts: Callable[..., Any] | None = None,
    ) -> None:
        self.definition = definition
        self.function = function
        self.validator = validator or json_schema_validator(definition.parameters, definition.name)
        self.policy = policy or ToolPolicy()
        self.takes_ctx = takes_ctx
        self.facts = facts
        self._is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: _RateLimiter | None = None

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.definition.name

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate and coerce arguments; raises `ToolArgumentsError` naming each bad argument."""
        if not isinstance(args, dict):
            raise ToolArgumentsError(self.name, ["arguments must be a JSON object"])
        return self.validator(args)

    def redacted(self, args: dict[str, Any]) -> dict[str, Any]:
        """Arguments with the policy's `redact` fields masked, for logs and transcripts."""
        return {k: ("***" if k in self.policy.redact else v) for k, v in args.items()}

    async def run(self, args: dict[str, Any], ctx: RunContext[Any] | None = None) -> Any:
        """Validate `args` and call the implementation under the tool's policy.

        Raises:
            ToolArgumentsError: The arguments are invalid (the model should correct them).
            TimeoutError: The call took longer than the policy's timeout.
        """
        return await self.execute(self.validate(args), ctx)

    async def execute(self, kwargs: dict[str, Any], ctx: RunContext[Any] | None = None) -> Any:
        """Call the implementation with arguments `validate` already returned, under the policy
        (rate limit, concurrency, timeout). The agent loop validates once, before approval, then
        calls this; `run` does both for direct callers.

        Raises:
            TimeoutError: The call took longer than the policy's timeout.
        """
        if self.policy.max_concurrency and self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.policy.max_concurrency)
        if self.policy.rate_limit and self._limiter is None:
            self._limiter = _RateLimiter(self.policy.rate_limit)
        if self._limiter is not None:
            await self._limiter.acquire()
        if self._semaphore is not None:
            async with self._semaphore:
                return await self._call(kwargs, ctx)
        return await self._call(kwargs, ctx)

    async def _call(self, kwargs: dict[str, Any], ctx: RunContext[Any] | None) -> Any:
        pos: tuple[Any, ...] = ()
        if self.takes_ctx:
            pos = (ctx if ctx is not None else RunContext(deps=None, tool_name=self.name),)
        if self._is_async:
            coro = self.function(*pos, **kwargs)
        else:
            # A sync call cannot be interrupted: on timeout it is abandoned in its thread.
            coro = asyncio.to_thread(self.function, *pos, **kwargs)
        if self.policy.timeout is None:
            return await coro
        # A deadline on the current task, not a new task per call as `wait_for` makes.
        async with asyncio.timeout(self.policy.timeout):
            return await coro

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the implementation directly, as the plain function it wraps."""
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"
