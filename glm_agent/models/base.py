"""The `ChatModel` protocol every backend implements.

A backend implements `request` (one turn) and, if it can stream, `request_stream`. Sync callers
use `request_sync` / `stream_sync`, which run the async methods on a private event loop.
"""

from __future__ import annotations

import abc
import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar

from glm_agent.messages import (
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

__all__ = ["ChatModel", "events_from_response", "run_sync"]

T = TypeVar("T")


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, also when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running loop (a notebook, a sync tool): use a helper thread.
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


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
        response: ModelResponse = run_sync(self.request(messages, tools, settings))
        return response

    def stream_sync(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> Iterator[ModelStreamEvent]:
        """Blocking form of `request_stream`: events are yielded as the model produces them."""
        q: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                async for event in self.request_stream(messages, tools, settings):
                    q.put(("event", event))
            except BaseException as e:  # handed to the consuming thread
                q.put(("error", e))
            finally:
                q.put(("done", None))

        t = threading.Thread(target=lambda: asyncio.run(pump()), daemon=True)
        t.start()
        while True:
            kind, item = q.get()
            if kind == "event":
                yield item
            elif kind == "error":
                t.join()
                raise item
            else:
                break
        t.join()

    async def aclose(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Release resources (HTTP pools, GPU memory). The default does nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
