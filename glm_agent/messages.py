"""The shared vocabulary: OpenAI-shaped messages, tool definitions, usage and stream events.

Messages are OpenAI-shaped (`role`, `content`, `tool_calls`, `tool_call_id`) plus `reasoning`.
Every GLM format maps them to and from its own wire format; every backend speaks them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from glm_agent._parts import (
    Content,
    ContentPart,
    ImagePart,
    ImageURL,
    MediaPart,
    TextPart,
    VideoPart,
    VideoURL,
    content_media,
    content_text,
    loggable_content,
    map_content_text,
    parts_from_openai,
    parts_to_openai,
)

__all__ = [
    "AssistantMessage",
    "Content",
    "ContentPart",
    "ImagePart",
    "ImageURL",
    "MediaPart",
    "Message",
    "ModelResponse",
    "ModelStreamEvent",
    "ReasoningDelta",
    "ResponseDone",
    "SystemMessage",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallArgsDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolDefinition",
    "ToolMessage",
    "Usage",
    "UserMessage",
    "VideoPart",
    "VideoURL",
    "content_media",
    "content_text",
    "loggable_content",
    "map_content_text",
    "messages_from_openai",
    "messages_to_openai",
    "new_call_id",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def new_call_id() -> str:
    """A fresh tool-call id in OpenAI's style (`call_` + 24 hex digits)."""
    return "call_" + uuid.uuid4().hex[:24]


class ToolDefinition(_Frozen):
    """What the model is told about a tool: plain data, no implementation."""

    name: str
    """Tool name; GLM and OpenAI allow `[A-Za-z0-9_-]`."""
    description: str = ""
    """What the tool does, for the model."""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments object."""
    kind: Literal["function", "output"] = "function"
    """`function`: a tool that runs; `output`: the agent's structured answer (calling it ends the
    run with its arguments as the output). Never sent to the model: both look alike to it."""
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Customer-facing sentences about this tool, by situation (`confirm`, `done`,
    `refused.<code>`...) and language (`zh`, `en`), with `{field}`s from the arguments and the
    result. Never sent to the model; the support bot and the offline model use them."""

    def to_openai(self) -> dict[str, Any]:
        """This definition as an OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> ToolDefinition:
        """Read an OpenAI `tools` entry (or its bare `function` object)."""
        fn = data.get("function", data)
        return cls(
            name=fn["name"],
            description=fn.get("description") or "",
            parameters=fn.get("parameters") or {"type": "object", "properties": {}},
        )


class ToolCall(_Frozen):
    """One tool call made by the model."""

    id: str = Field(default_factory=new_call_id)
    """Call id, echoed by the tool message that answers it."""
    name: str
    """Name of the tool called."""
    arguments: str = "{}"
    """Arguments as a JSON string, exactly as produced."""

    def args_dict(self) -> dict[str, Any]:
        """Arguments decoded as a JSON object; raises `ValueError` when they are not one."""
        value = json.loads(self.arguments) if self.arguments.strip() else {}
        if not isinstance(value, dict):
            raise ValueError(f"arguments are a JSON {type(value).__name__}, not an object")
        return value

    @classmethod
    def from_args(cls, name: str, args: dict[str, Any], id: str | None = None) -> ToolCall:
        """A call from decoded arguments (serialised compactly, non-ASCII kept)."""
        return cls(
            id=id or new_call_id(),
            name=name,
            arguments=json.dumps(args, ensure_ascii=False),
        )

    def to_openai(self) -> dict[str, Any]:
        """This call in OpenAI's `tool_calls` shape."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class SystemMessage(_Frozen):
    """Instructions for the model."""

    role: Literal["system"] = "system"
    content: str


class UserMessage(_Frozen):
    """A turn of the user: text, or text with images and videos (content parts)."""

    role: Literal["user"] = "user"
    content: Content
    """Text, or a tuple of `TextPart` / `ImagePart` / `VideoPart` (OpenAI part dicts are read
    as parts)."""

    @property
    def text(self) -> str:
        """The text of the turn (its text parts joined)."""
        return content_text(self.content)

    @property
    def media(self) -> tuple[MediaPart, ...]:
        """The turn's images and videos."""
        return content_media(self.content)


class AssistantMessage(_Frozen):
    """A turn of the model: text, reasoning and tool calls."""

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning: str | None = None
    """Thinking text (GLM-4.5+ `<think>`, OpenAI-compatible `reasoning_content`)."""
    tool_calls: tuple[ToolCall, ...] = ()


class ToolMessage(_Frozen):
    """The result of one tool call."""

    role: Literal["tool"] = "tool"
    content: Content
    """The result as text, or parts (GLM-4.6V and GLM-5.3-Flash read images in tool results)."""
    tool_call_id: str
    name: str | None = None
    """Name of the tool that produced it (not part of OpenAI's shape; kept for readers)."""
    is_error: bool = False
    """True when the content reports a failure the model should correct."""

    @property
    def text(self) -> str:
        """The text of the result (its text parts joined)."""
        return content_text(self.content)

    @property
    def media(self) -> tuple[MediaPart, ...]:
        """The result's images and videos."""
        return content_media(self.content)


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]
"""Any message, discriminated by `role`."""

_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def messages_to_openai(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages as OpenAI chat dicts (`reasoning` goes to `reasoning_content`)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, AssistantMessage):
            d: dict[str, Any] = {"role": "assistant", "content": m.content}
            if m.reasoning is not None:
                d["reasoning_content"] = m.reasoning
            if m.tool_calls:
                d["tool_calls"] = [c.to_openai() for c in m.tool_calls]
            out.append(d)
        elif isinstance(m, ToolMessage):
            out.append(
                {
                    "role": "tool",
                    "content": parts_to_openai(m.content),
                    "tool_call_id": m.tool_call_id,
                }
            )
        elif isinstance(m, UserMessage):
            out.append({"role": "user", "content": parts_to_openai(m.content)})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def messages_from_openai(data: Sequence[dict[str, Any]]) -> list[Message]:
    """Read OpenAI chat dicts (also `reasoning_content`, and content parts: images and videos
    in user and tool messages, text parts anywhere).

    Raises:
        ValueError: an unknown role or part type, or a malformed part (the message names which
            message and what is taken).
    """
    out: list[dict[str, Any]] = []
    for i, d in enumerate(data):
        role = d.get("role")
        where = f"message {i}"
        if role in ("system", "developer", "user"):
            out.append(
                {
                    "role": "user" if role == "user" else "system",
                    "content": parts_from_openai(d.get("content"), where, media=role == "user"),
                }
            )
        elif role == "assistant":
            calls = [
                {
                    "id": c.get("id") or new_call_id(),
                    "name": c["function"]["name"],
                    "arguments": c["function"].get("arguments") or "{}",
                }
                for c in d.get("tool_calls") or []
            ]
            out.append(
                {
                    "role": "assistant",
                    "content": None
                    if d.get("content") is None
                    else parts_from_openai(d["content"], where, media=False),
                    "reasoning": d.get("reasoning_content", d.get("reasoning")),
                    "tool_calls": calls,
                }
            )
        elif role == "tool":
            out.append(
                {
                    "role": "tool",
                    "content": parts_from_openai(d.get("content"), where),
                    "tool_call_id": d.get("tool_call_id") or "",
                    "name": d.get("name"),
                }
            )
        else:
            raise ValueError(
                f"message {i}: unknown role {role!r}; roles: system, user, assistant, tool"
            )
    return _MESSAGES.validate_python(out)


class Usage(BaseModel):
    """Tokens and requests used; add two with `+`."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            requests=self.requests + other.requests,
        )


class ModelResponse(_Frozen):
    """What a `ChatModel` returns for one request."""

    message: AssistantMessage
    usage: Usage = Field(default_factory=Usage)
    finish_reason: Literal["stop", "length", "tool_calls", "cancelled", "error"] = "stop"
    model_name: str = ""


# --- stream events (model level) --------------------------------------------------------------


class TextDelta(_Frozen):
    """A piece of answer text."""

    kind: Literal["text"] = "text"
    content: str


class ReasoningDelta(_Frozen):
    """A piece of reasoning text."""

    kind: Literal["reasoning"] = "reasoning"
    content: str


class ToolCallStart(_Frozen):
    """The model began a tool call; its name is known."""

    kind: Literal["tool_call_start"] = "tool_call_start"
    index: int
    id: str
    name: str


class ToolCallArgsDelta(_Frozen):
    """A piece of a tool call's JSON arguments."""

    kind: Literal["tool_call_args"] = "tool_call_args"
    index: int
    id: str
    delta: str


class ToolCallEnd(_Frozen):
    """A tool call is complete."""

    kind: Literal["tool_call_end"] = "tool_call_end"
    index: int
    call: ToolCall


class ResponseDone(_Frozen):
    """The model's turn ended; carries the whole response (equal to the non-streaming one)."""

    kind: Literal["response_done"] = "response_done"
    response: ModelResponse


ModelStreamEvent = Annotated[
    TextDelta | ReasoningDelta | ToolCallStart | ToolCallArgsDelta | ToolCallEnd | ResponseDone,
    Field(discriminator="kind"),
]
"""Any event of a streamed model turn; the last one is always `ResponseDone`."""
