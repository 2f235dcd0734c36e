"""`FunctionModel`: a Python function decides each model turn. For tests and scripted bots."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
)
from glm_agent.models.base import ChatModel
from glm_agent.settings import ModelSettings

__all__ = ["AgentInfo", "FunctionModel", "estimate_tokens", "last_tool_results"]


@dataclass(frozen=True)
class AgentInfo:
    """What a `FunctionModel` function is told about the request besides the messages."""

    tools: list[ToolDefinition] = field(default_factory=list)
    """Tools the model may call."""
    settings: ModelSettings = field(default_factory=ModelSettings)
    """The request's settings (tool_choice, max_tokens...)."""

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered."""
        return [t.name for t in self.tools]


TurnResult = AssistantMessage | ModelResponse | str
StreamItem = str | ToolCall
TurnFunction = Callable[[list[Message], AgentInfo], TurnResult | Awaitable[TurnResult]]
StreamFunction = Callable[
    [list[Message], AgentInfo], Iterable[StreamItem] | AsyncIterator[StreamItem]
]


def estimate_tokens(messages: Iterable[Message]) -> int:
    """A rough token count for models without a tokenizer: about one token per CJK character
    or per four bytes of other text (UTF-8 bytes / 3.5 covers both well enough); images and
    videos by `ImagePart.estimated_tokens`."""
    total = 0
    for m in messages:
        if isinstance(m, UserMessage | ToolMessage):
            size = len(m.text.encode())
            total += sum(p.estimated_tokens() for p in m.media)
        else:
            size = len((m.content or "").encode())
        if isinstance(m, AssistantMessage):
            size += len((m.reasoning or "").encode())
            size += sum(len(c.name) + len(c.arguments.encode()) for c in m.tool_calls)
        total += int(size / 3.5) + 1
    return total


def _chunks(text: str, size: int) -> Iterable[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


class FunctionModel(ChatModel):
    """A chat model whose turns are decided by a Python function.

    Args:
        function: Called with the messages and an `AgentInfo`; returns the assistant's turn as
            a string, an `AssistantMessage` or a full `ModelResponse` (sync or async).
        stream_function: Optional; yields text pieces (`str`) and complete `ToolCall`s to
            script a streamed turn. Without it, streaming replays `function`'s turn in small
            chunks.
        name: Name shown in transcripts.
        chunk_size: Characters per text delta when replaying a turn as a stream.
        media: What the scripted model reads besides text (`("image",)`, `()` for text
            only); None: anything (the function sees whatever the messages hold).
    """

    def __init__(
        self,
        function: TurnFunction | None = None,
        *,
        stream_function: StreamFunction | None = None,
        name: str = "function",
        chunk_size: int = 4,
        media: tuple[str, ...] | None = None,
    ) -> None:
        if function is None and stream_function is None:
            raise TypeError("FunctionModel needs a function, a stream_function or both")
        self.function = function
        self.stream_function = stream_function
        self.name = name
        self.chunk_size = chunk_size
        self.media = media

    def _usage(self, messages: Sequence[Message], reply: AssistantMessage) -> Usage:
        return Usage(
            input_tokens=estimate_tokens(messages),
            output_tokens=estimate_tokens([reply]),
            requests=1,
        )

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Run one turn by calling the function (or draining the stream function)."""
        info = AgentInfo(list(tools), settings or ModelSettings())
        if self.function is None:
            response: ModelResponse | None = None
            async for event in self.request_stream(messages, tools, settings):
                if isinstance(event, ResponseDone):
                    response = event.response
            assert response is not None
            return response
        result = self.function(list(messages), info)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, ModelResponse):
            return result
        reply = AssistantMessage(content=result) if isinstance(result, str) else result
        return ModelResponse(
            message=reply,
            usage=self._usage(messages, reply),
            finish_reason="tool_calls" if reply.tool_calls else "stop",
            model_name=self.name,
        )

    async def request_stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn: the stream function's items, or the function's turn in chunks."""
        info = AgentInfo(list(tools), settings or ModelSettings())
        if self.stream_function is None:
            response = await self.request(messages, tools, settings)
            msg = response.message
            for piece in _chunks(msg.content or "", self.chunk_size):
                yield TextDelta(content=piece)
            for i, call in enumerate(msg.tool_calls):
                for event in self._call_events(i, call):
                    yield event
            yield ResponseDone(response=response)
            return
        text: list[str] = []
        calls: list[ToolCall] = []
        items = self.stream_function(list(messages), info)
        async for item in _aiter(items):
            if isinstance(item, str):
                text.append(item)
                yield TextDelta(content=item)
            else:
                for event in self._call_events(len(calls), item):
                    yield event
                calls.append(item)
        reply = AssistantMessage(content="".join(text) or None, tool_calls=tuple(calls))
        yield ResponseDone(
            response=ModelResponse(
                message=reply,
                usage=self._usage(messages, reply),
                finish_reason="tool_calls" if calls else "stop",
                model_name=self.name,
            )
        )

    def _call_events(self, index: int, call: ToolCall) -> Iterable[ModelStreamEvent]:
        yield ToolCallStart(index=index, id=call.id, name=call.name)
        for piece in _chunks(call.arguments, max(self.chunk_size, 1)):
            yield ToolCallArgsDelta(index=index, id=call.id, delta=piece)
        yield ToolCallEnd(index=index, call=call)


async def _aiter(items: Iterable[StreamItem] | AsyncIterator[StreamItem]) -> AsyncIterator[Any]:
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def last_tool_results(messages: Sequence[Message]) -> list[ToolMessage]:
    """The tool results at the end of the conversation (handy inside a turn function)."""
    out: list[ToolMessage] = []
    for m in reversed(messages):
        if not isinstance(m, ToolMessage):
            break
        out.append(m)
    return out[::-1]
