"""What a run returns and streams: the result with its transcript, step records and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from glm_agent.messages import (
    AssistantMessage,
    ImagePart,
    Message,
    ModelResponse,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from glm_agent.tools import Identity

__all__ = [
    "AgentStreamEvent",
    "ModelResponseEvent",
    "RunDone",
    "RunResult",
    "StepRecord",
    "StepStart",
    "ToolCallRecord",
    "ToolResultEvent",
    "UsageLimits",
]

OutputT = TypeVar("OutputT")

ToolStatus = Literal[
    "ok",
    "error",
    "invalid_arguments",
    "unknown_tool",
    "timeout",
    "rejected",
    "deferred",
    "refused",
    "denied",
    "review",
]
"""How a call ended: `refused` (the tool said no: a business outcome, `ToolRefused`), `denied`
(a policy stopped it: identity, ownership, a rule, a limit), `review` (a rule sends it to a
human: the run stops)."""


class UsageLimits(BaseModel):
    """Caps on one run; going over raises `UsageLimitExceeded`."""

    model_config = ConfigDict(extra="forbid")

    request_limit: int | None = Field(default=None, ge=1)
    """Most model requests."""
    input_tokens_limit: int | None = Field(default=None, ge=1)
    """Most input tokens over all requests."""
    output_tokens_limit: int | None = Field(default=None, ge=1)
    """Most output tokens over all requests."""
    total_tokens_limit: int | None = Field(default=None, ge=1)
    """Most tokens, input plus output."""

    def exceeded(self, usage: Usage) -> str | None:
        """Which limit `usage` is over, or None."""
        checks = [
            ("request_limit", self.request_limit, usage.requests),
            ("input_tokens_limit", self.input_tokens_limit, usage.input_tokens),
            ("output_tokens_limit", self.output_tokens_limit, usage.output_tokens),
            ("total_tokens_limit", self.total_tokens_limit, usage.total_tokens),
        ]
        for name, limit, used in checks:
            if limit is not None and used > limit:
                return f"{name} of {limit} exceeded ({used})"
        return None


@dataclass
class ToolCallRecord:
    """One executed (or refused) tool call."""

    call: ToolCall
    status: ToolStatus
    content: str
    """What the model was told."""
    seconds: float = 0.0
    detail: str = ""
    """What went wrong, for logs and human agents; never shown to the model or the customer."""
    media: tuple[ImagePart, ...] = ()
    """Images the tool returned (a photo of the parcel at the depot): the model gets them
    after `content`, in the same tool result (GLM-4.6V, GLM-5.3-Flash read them there)."""


@dataclass
class StepRecord:
    """One model turn and the tool calls it made."""

    step: int
    response: ModelResponse
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    model_seconds: float = 0.0
    tools_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def overhead_seconds(self) -> float:
        """Time spent in the framework itself (not the model, not the tools)."""
        return max(0.0, self.total_seconds - self.model_seconds - self.tools_seconds)


@dataclass
class RunResult(Generic[OutputT]):
    """The outcome of a run, with everything needed to inspect it."""

    output: OutputT
    """The answer: text, or an instance of the agent's output type."""
    messages: list[Message]
    """The whole transcript sent to and produced by the model, tool calls included."""
    new_messages: list[Message]
    """The messages this run added (the new user turn onwards)."""
    steps: list[StepRecord]
    """One record per model turn, with timings."""
    usage: Usage
    """Tokens and requests over the run."""
    seconds: float = 0.0
    """Wall time of the run."""
    status: Literal["completed", "deferred", "review"] = "completed"
    """`deferred` when tool calls wait for approval; `review` when a policy rule sent a call to
    a human (the call did not run)."""
    deferred_calls: list[ToolCall] = field(default_factory=list)
    """Calls waiting for approval (resume with `approvals=`), or for review."""
    session_id: str | None = None
    """The session the run belongs to."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extra facts about the run (citations, curated answer, ...)."""
    resumed_calls: list[ToolCallRecord] = field(default_factory=list)
    """Calls an earlier run deferred that this run settled before its first model turn."""
    identity: Identity | None = None
    """The verified customer at the end of the run (a verification tool may have set it)."""

    def __repr__(self) -> str:
        # Compact on purpose: transcripts can be long, and asyncio reprs task results.
        return (
            f"RunResult(output={self.output!r:.200}, status={self.status!r}, "
            f"steps={len(self.steps)}, messages={len(self.messages)}, usage={self.usage!r})"
        )

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        """Every tool call of the run, in order (resumed ones first)."""
        return [*self.resumed_calls, *(r for s in self.steps for r in s.tool_calls)]

    @property
    def last_message(self) -> AssistantMessage | None:
        """The model's last turn."""
        for m in reversed(self.messages):
            if isinstance(m, AssistantMessage):
                return m
        return None


class StepStart(BaseModel):
    """A model turn begins."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["step_start"] = "step_start"
    step: int


class ModelResponseEvent(BaseModel):
    """The model's whole turn, streamed or not: text, reasoning, tool calls and usage."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["model_response"] = "model_response"
    step: int
    response: ModelResponse


class ToolResultEvent(BaseModel):
    """A tool call finished (or was refused); `content` is what the model sees."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["tool_result"] = "tool_result"
    call: ToolCall
    status: ToolStatus
    content: str
    seconds: float = 0.0


class RunDone(BaseModel):
    """The run finished; always the last event."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    kind: Literal["run_done"] = "run_done"
    result: Any
    """The `RunResult`."""


AgentStreamEvent = Annotated[
    StepStart
    | TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallArgsDelta
    | ToolCallEnd
    | ModelResponseEvent
    | ToolResultEvent
    | RunDone,
    Field(discriminator="kind"),
]
"""Events of a run (`Agent.iter`, `Agent.stream`), in order: per step a `StepStart`, the model's
deltas (when the model is streamed), its `ModelResponseEvent`, tool results; then `RunDone` with
the result. A `StepStart` is the point between steps: stop there and the model is not called."""
