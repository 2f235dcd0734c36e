"""The `ChatModel` protocol every backend implements.

A backend implements `request` (one turn) and, if it can stream, `request_stream`. Sync callers
use `request_sync` / `stream_sync`, which run the async methods on the shared sync bridge
(`glm_agent._sync_bridge`).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterator, Sequence

from glm_agent._sync_bridge import iterate_sync, run_sync
from glm_agent.messages import (
    MediaPart,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
)
from glm_agent.settings import ModelSettings

__all__ = ["ChatModel", "events_from_response", "iterate_sync", "run_sync"]


def events_from_response(response: ModelResponse) -> Iterator[ModelStreamEvent]:
    """The stream events a non-streaming response amounts to (for backends that cannot stream)."""
    msg = response.message
    if msg.reasoning:
        yield ReasoningDelta(content=msg.reasoning)
    if msg.content:
        yield TextDelta(content=msg.content)
    for i, call in enumerate(msg.tool_calls):
        yield ToolCallStart(index=i, id=call.id, name=call.name)
        yield ToolCallArgsDelta(index=i, id=call.id, delta=call.arguments)
        yield ToolCallEnd(index=i, call=call)
    yield ResponseDone(response=response)


class ChatModel(abc.ABC):
    """A chat model: messages and tool definitions in, a response with text and tool calls out."""

    #: A short name for logs and transcripts (a model id, a checkpoint path...).
    name: str = "model"
    #: What the model reads besides text (`image`, `video`); `()`: text only; None: not known
    #: here (a server decides). A run refuses images for a model that reads none, up front.
    media: tuple[str, ...] | None = None

    def count_media_tokens(self, part: MediaPart) -> int:
        """Prompt tokens an image or video costs this model (it fits session history into
        the context). Default: GLM's vision processors' rule of thumb."""
        return part.estimated_tokens()

    @abc.abstractmethod
    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Run one model turn.

        Args:
            messages: The conversation so far.
            tools: Tools the model may call.
            settings: Generation settings (temperature, max tokens, stop, tool_choice...).

        Returns:
            The model's turn: text, reasoning, tool calls and usage.
        """

    async def request_stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Run one model turn, yielding deltas as they come; the last event is `ResponseDone`.

        The default runs `request` and replays its result; streaming backends override it.
        """
        response = await self.request(messages, tools, settings)
        for event in events_from_response(response):
            yield event

    def request_sync(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Blocking form of `request`."""
        return run_sync(self.request(messages, tools, settings))

    def stream_sync(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> Iterator[ModelStreamEvent]:
        """Blocking form of `request_stream`: events are yielded as the model produces them."""
        yield from iterate_sync(self.request_stream(messages, tools, settings))

    async def aclose(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Release resources (HTTP pools, GPU memory). The default does nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
