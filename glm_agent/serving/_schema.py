"""Request bodies of the API (OpenAI's shapes where OpenAI has one), as pydantic models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glm_agent.settings import ModelSettings

__all__ = [
    "AgentRunRequest",
    "ApprovalDecision",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "EmbeddingRequest",
    "ErrorDetail",
    "ErrorResponse",
    "FunctionIn",
    "KnowledgeSearchRequest",
    "StreamOptions",
    "ToolIn",
]


class ChatMessageIn(BaseModel):
    """One message of a chat request, as OpenAI sends it."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    """Who wrote it."""
    content: str | list[dict[str, Any]] | None = None
    """Text, or OpenAI content parts: `text` anywhere, `image_url` (http(s) or base64 `data:`
    URLs) and `video_url` in user and tool messages."""
    name: str | None = None
    """Optional author name."""
    tool_calls: list[dict[str, Any]] | None = None
    """Tool calls of an assistant message."""
    tool_call_id: str | None = None
    """The call a tool message answers."""


class FunctionIn(BaseModel):
    """A function a client offers the model."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    """Function name."""
    description: str | None = None
    """What it does."""
    parameters: dict[str, Any] | None = None
    """JSON Schema of its arguments."""
    strict: bool | None = None
    """Accepted for compatibility; arguments are not constrained by it."""


class ToolIn(BaseModel):
    """An entry of `tools`."""

    type: Literal["function"] = "function"
    """Only functions exist."""
    function: FunctionIn
    """The function."""


class StreamOptions(BaseModel):
    """Streaming options."""

    include_usage: bool = False
    """Send a last chunk with usage (and no choices) before `[DONE]`."""


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions: `model` is an agent's name or a plain model's."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    """An agent (runs with its tools) or a plain model (client tools are passed through)."""
    messages: list[ChatMessageIn] = Field(min_length=1)
    """The conversation; for an agent with a session only the last user message is used."""
    stream: bool = False
    """Answer as server-sent events in OpenAI's chunk format."""
    stream_options: StreamOptions | None = None
    """Streaming options."""
    tools: list[ToolIn] | None = None
    """Tools offered to a plain model (agents use their own)."""
    tool_choice: str | dict[str, Any] | None = None
    """`auto`, `none`, `required` or `{"type": "function", "function": {"name": ...}}`."""
    parallel_tool_calls: bool | None = None
    """Whether several tool calls may come in one turn."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling mass."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most tokens to generate per model turn."""
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """The newer name of `max_tokens`."""
    stop: str | list[str] | None = None
    """Stop strings."""
    seed: int | None = None
    """Sampling seed."""
    n: int = Field(default=1, ge=1, le=1)
    """Only one choice is produced."""
    user: str | None = Field(default=None, max_length=200)
    """The session id for agents when no `X-Session-Id` header is sent."""

    def settings(self, *, client_tools: bool = True) -> ModelSettings:
        """The generation settings the request sets.

        Args:
            client_tools: Include `tool_choice` and `parallel_tool_calls` (False for agents,
                whose tools are their own).
        """
        fields: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "stop": [self.stop] if isinstance(self.stop, str) else self.stop,
            "seed": self.seed,
        }
        if client_tools:
            fields["parallel_tool_calls"] = self.parallel_tool_calls
            fields["tool_choice"] = _tool_choice(self.tool_choice)
        return ModelSettings(**{k: v for k, v in fields.items() if v is not None})


def _tool_choice(choice: str | dict[str, Any] | None) -> str | None:
    if choice is None or isinstance(choice, str):
        return choice
    fn = choice.get("function")
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        from glm_agent.serving._errors import HTTPProblem

        raise HTTPProblem(
            400, "tool_choice must be auto, none, required or a function", param="tool_choice"
        )
    return name


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings: `model` names an agent whose knowledge base embeds the input."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    """An agent with a knowledge base."""
    input: str | list[str] = Field(min_length=1)
    """Text or texts to embed."""
    encoding_format: Literal["float", "base64"] = "float"
    """`float` lists, or base64 of little-endian float32."""


class ApprovalDecision(BaseModel):
    """A decision on a tool call a run deferred for approval."""

    model_config = ConfigDict(extra="forbid")

    approved: bool
    """Run the call (true) or refuse it (false)."""
    reason: str | None = Field(default=None, max_length=2000)
    """Why it was refused (the model is told)."""


class AgentRunRequest(BaseModel):
    """POST /v1/agents/{name}/runs."""

    model_config = ConfigDict(extra="forbid")

    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[dict[str, Any]], Field(min_length=1, max_length=64)]
        | None
    ) = None
    """The user's message, text or OpenAI content parts (`text`, `image_url`, `video_url`);
    leave it out to resume a deferred run with `approvals`."""
    approvals: dict[str, ApprovalDecision] = Field(default_factory=dict)
    """Decisions on the calls a deferred run is waiting for, by call id."""
    session_id: str | None = Field(default=None, min_length=1, max_length=200)
    """The conversation to continue (and extend) in the agent's session store."""
    stream: bool = False
    """Answer with an SSE stream of typed run events."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form data handed to tools (`RunContext.metadata`)."""


class ErrorDetail(BaseModel):
    """What went wrong, in OpenAI's fields."""

    message: str
    """A readable description (names the valid options where there are some)."""
    type: str
    """`invalid_request_error`, `rate_limit_error`, `permission_error`, `server_error`..."""
    param: str | None = None
    """The request field at fault, if one is."""
    code: str | None = None
    """A stable machine-readable code (`model_not_found`, `rate_limit_exceeded`...)."""


class ErrorResponse(BaseModel):
    """Every error body: `{"error": {...}}`."""

    error: ErrorDetail
    """The error."""


class KnowledgeSearchRequest(BaseModel):
    """POST /v1/agents/{name}/knowledge/search."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    """What to look for."""
    k: int = Field(default=5, ge=1, le=100)
    """How many passages."""
