"""`AgentRun`: one run of an agent, as an async iterator of typed events (`Agent.iter`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Generic, TypeVar

from glm_agent.results import AgentStreamEvent, RunDone, RunResult

__all__ = ["AgentRun"]

OutputT = TypeVar("OutputT")


class AgentRun(Generic[OutputT]):
    """One run of an agent, as an async iterator of typed events (`Agent.iter`).

    Use it with `async with` so that leaving early closes the run: a run left before its
    `RunDone` stores nothing and calls the model no more.
    """

    def __init__(self, events: AsyncGenerator[AgentStreamEvent, None]) -> None:
        self._events = events
        self.result: RunResult[OutputT] | None = None
        """The result, once `RunDone` has been yielded."""

    def __aiter__(self) -> AgentRun[OutputT]:
        return self

    async def __anext__(self) -> AgentStreamEvent:
        event = await self._events.__anext__()
        if isinstance(event, RunDone):
            self.result = event.result
        return event

    async def aclose(self) -> None:
        """Stop the run here (between events); nothing more runs and nothing is stored."""
        await self._events.aclose()

    async def __aenter__(self) -> AgentRun[OutputT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
