"""Server-sent events, decoded line by line (the wire format of OpenAI-style streaming)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import cast

import httpx

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_sse", "iter_sse"]


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its `event` field (default `message`) and its joined `data` lines."""

    event: str
    data: str


class SSEDecoder:
    """Turns lines into events following the WHATWG rules that OpenAI-style servers rely on.

    `data:` lines accumulate (joined by newlines) until a blank line dispatches them; lines
    starting with `:` are comments (keep-alives); `id:` and `retry:` are read and ignored.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed_line(self, line: str) -> ServerSentEvent | None:
        """Read one line (without its terminator); returns an event when the line dispatches one."""
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None

    def flush(self) -> ServerSentEvent | None:
        """Dispatch what has accumulated (also called at the end of the body)."""
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(self._event or "message", "\n".join(self._data))
        self._event, self._data = "", []
        return event


async def aiter_sse(response: httpx.Response) -> AsyncGenerator[ServerSentEvent, None]:
    """The events of a streamed async `httpx` response, as they arrive."""
    decoder = SSEDecoder()
    # Closed explicitly: a consumer that stops early must not leave the line reader pending.
    reader = cast(AsyncGenerator[str, None], response.aiter_lines())  # it is one; typed loosely
    async with contextlib.aclosing(reader) as lines:
        async for line in lines:
            event = decoder.feed_line(line)
            if event is not None:
                yield event
    last = decoder.flush()
    if last is not None:
        yield last


def iter_sse(response: httpx.Response) -> Iterator[ServerSentEvent]:
    """The events of a streamed sync `httpx` response, as they arrive."""
    decoder = SSEDecoder()
    for line in response.iter_lines():
        event = decoder.feed_line(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last
