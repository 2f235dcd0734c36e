"""`Agent`: a model, tools and instructions; `run` / `arun` / `stream` drive the planner loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

from glm_agent._output import OutputSchema
from glm_agent.approval import Approval, ApprovalHandler
from glm_agent.messages import Message, SystemMessage, UserMessage
from glm_agent.models import ChatModel, iterate_sync, run_sync
from glm_agent.planner import Planner
from glm_agent.results import AgentStreamEvent, RunDone, RunResult, UsageLimits
from glm_agent.settings import ModelSettings
from glm_agent.tools import RunContext, Tool, ToolRegistry

__all__ = ["Agent"]

OutputT = TypeVar("OutputT")


def _resolve_model(model: ChatModel | str) -> ChatModel:
    if isinstance(model, ChatModel):
        return model
    if model == "test":
        from glm_agent.models.test import TestModel

        return TestModel()
    from glm_agent.models.resolve import resolve_model

    return resolve_model(model)


class Agent(Generic[OutputT]):
    """A tool-using agent.

    Args:
        model: A `ChatModel`, or a model string (`"test"`, a checkpoint, `"vllm:..."`...).
        tools: Tools, typed functions, or a `ToolRegistry`.
        system_prompt: Instructions placed first in every conversation.
        output_type: Validate the answer into this type (offered to the model as a tool).
        model_settings: Default generation settings (temperature, tool_choice...).
        max_steps: Most model turns in one run.
        retries: Correctable failures allowed per tool (and for the answer) in one run.
        usage_limits: Caps on requests and tokens per run.
        approval: Decides on calls of tools marked `requires_approval` (default: defer).
        name: The agent's name (for servers and logs).
    """

    def __init__(
        self,
        model: ChatModel | str,
        *,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] = (),
        system_prompt: str | None = None,
        output_type: type[OutputT] | None = None,
        model_settings: ModelSettings | None = None,
        max_steps: int = 10,
        retries: int = 2,
        usage_limits: UsageLimits | None = None,
        approval: ApprovalHandler | None = None,
        name: str = "agent",
    ) -> None:
        self.model = _resolve_model(model)
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.system_prompt = system_prompt
        self.output_type = output_type
        self.name = name
        self._planner = Planner(
            model=self.model,
            registry=self.tools,
            output=OutputSchema(output_type) if output_type is not None else None,
            settings=model_settings or ModelSettings(),
            max_steps=max_steps,
            retries=retries,
            usage_limits=usage_limits,
            approval_handler=approval,
        )

    # --- building the conversation ---------------------------------------------------------

    def _conversation(
        self, prompt: str | None, message_history: Sequence[Message] | None
    ) -> tuple[list[Message], int]:
        messages: list[Message] = list(message_history or [])
        if self.system_prompt and not any(isinstance(m, SystemMessage) for m in messages):
            messages.insert(0, SystemMessage(content=self.system_prompt))
        new_from = len(messages)
        if prompt is not None:
            messages.append(UserMessage(content=prompt))
        return messages, new_from

    def _planner_for(self, model_settings: ModelSettings | None) -> Planner:
        if model_settings is None:
            return self._planner
        p = self._planner
        return Planner(
            model=p.model,
            registry=p.registry,
            output=p.output,
            settings=p.settings.merged(model_settings),
            max_steps=p.max_steps,
            retries=p.retries,
            usage_limits=p.usage_limits,
            approval_handler=p.approval_handler,
        )

    # --- running ---------------------------------------------------------------------------

    async def arun(
        self,
        prompt: str | None = None,
        *,
        message_history: Sequence[Message] | None = None,
        deps: Any = None,
        session_id: str | None = None,
        tenant: str | None = None,
        approvals: Mapping[str, Approval] | None = None,
        model_settings: ModelSettings | None = None,
        cancel: threading.Event | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> RunResult[OutputT]:
        """Run the agent until it answers.

        Args:
            prompt: The user's message (None to resume a deferred run from `message_history`).
            message_history: Earlier messages of the conversation.
            deps: Dependencies handed to tools through `RunContext.deps`.
            session_id: The conversation this run belongs to.
            tenant: The tenant the session is scoped to.
            approvals: Decisions on calls an earlier run deferred, by call id.
            model_settings: Settings for this run, over the agent's defaults.
            cancel: Set it to stop the run between steps (`RunCancelled`).
            metadata: Free-form data tools see in `RunContext.metadata`.

        Returns:
            The answer with the transcript, step records, usage and timings.
        """
        return await self._arun(
            prompt,
            message_history,
            deps,
            session_id,
            tenant,
            approvals,
            model_settings,
            cancel,
            metadata,
            emit=None,
        )

    async def _arun(
        self,
        prompt: str | None,
        message_history: Sequence[Message] | None,
        deps: Any,
        session_id: str | None,
        tenant: str | None,
        approvals: Mapping[str, Approval] | None,
        model_settings: ModelSettings | None,
        cancel: threading.Event | None,
        metadata: dict[str, Any] | None,
        emit: Any,
    ) -> RunResult[OutputT]:
        messages, new_from = self._conversation(prompt, message_history)
        ctx: RunContext[Any] = RunContext(
            deps=deps, session_id=session_id, tenant=tenant, metadata=dict(metadata or {})
        )
        result: RunResult[OutputT] = await self._planner_for(model_settings).run(
            messages,
            ctx,
            new_from=new_from,
            approvals=approvals,
            emit=emit,
            cancelled=cancel.is_set if cancel is not None else None,
        )
        return result

    def run(
        self,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> RunResult[OutputT]:
        """Blocking form of `arun` (same arguments)."""
        result: RunResult[OutputT] = run_sync(self.arun(prompt, **kwargs))
        return result

    async def astream(
        self,
        prompt: str | None = None,
        *,
        message_history: Sequence[Message] | None = None,
        deps: Any = None,
        session_id: str | None = None,
        tenant: str | None = None,
        approvals: Mapping[str, Approval] | None = None,
        model_settings: ModelSettings | None = None,
        cancel: threading.Event | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[AgentStreamEvent]:
        """Run the agent, yielding typed events; the last is `RunDone` with the result.

        Takes the same arguments as `arun`. Errors of the run are raised from the iterator.
        """
        events: asyncio.Queue[AgentStreamEvent | BaseException | None] = asyncio.Queue()

        async def emit(event: AgentStreamEvent) -> None:
            await events.put(event)

        async def drive() -> None:
            try:
                result = await self._arun(
                    prompt,
                    message_history,
                    deps,
                    session_id,
                    tenant,
                    approvals,
                    model_settings,
                    cancel,
                    metadata,
                    emit,
                )
                await events.put(RunDone(result=result))
            except BaseException as e:  # handed to the consumer
                await events.put(e)
            finally:
                await events.put(None)

        task = asyncio.create_task(drive())
        try:
            while (item := await events.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()

    def stream(self, prompt: str | None = None, **kwargs: Any) -> Iterator[AgentStreamEvent]:
        """Blocking form of `astream`: events are yielded as they happen."""
        yield from iterate_sync(self.astream(prompt, **kwargs))

    @classmethod
    def from_yaml(cls, path: str, *, environment: str | None = None) -> Agent[Any]:
        """Build an agent from an `agent.yaml` (model, tools, knowledge, memory, limits).

        Errors name the file, line and key.
        """
        from glm_agent.agent_config import load_agent

        return load_agent(path, environment=environment)

    @overload
    def tool(self, fn: Callable[..., Any], /) -> Tool: ...

    @overload
    def tool(self, /, **kwargs: Any) -> Callable[[Callable[..., Any]], Tool]: ...

    def tool(
        self, fn: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Register a tool on this agent: `@agent.tool` or `@agent.tool(timeout=5)`."""
        if fn is not None:
            return self.tools.register(fn)
        return self.tools.register(**kwargs)

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.model!r}, tools={self.tools.names})"
