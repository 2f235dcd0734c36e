"""`Agent`: a model, tools and instructions; `run` / `arun` / `stream` drive the planner loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

from glm_agent._knowledge import knowledge_context, knowledge_tool, open_knowledge
from glm_agent._long_term import long_term_tools
from glm_agent._output import OutputSchema
from glm_agent.approval import Approval, ApprovalHandler
from glm_agent.memory import (
    ContextWindow,
    LongTermMemory,
    SessionStore,
    estimate_tokens,
    open_store,
)
from glm_agent.messages import AssistantMessage, Message, SystemMessage, UserMessage
from glm_agent.models import ChatModel, iterate_sync, run_sync
from glm_agent.planner import Planner
from glm_agent.results import AgentStreamEvent, RunDone, RunResult, UsageLimits
from glm_agent.settings import ModelSettings
from glm_agent.tools import RunContext, Tool, ToolRegistry

__all__ = ["Agent"]

OutputT = TypeVar("OutputT")

DEFAULT_TENANT = "default"
SUMMARY_PROMPT = (
    "Summarise this customer-service conversation for the agent who continues it: the "
    "customer's identity and goals, facts and decisions so far, open questions. Be brief and "
    "keep ids, amounts and dates exactly."
)


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
        memory: Where sessions live: a `SessionStore` or a URL (`sqlite:///bot.db`,
            `redis://...`, `postgresql://...`). Runs with a `session_id` load and extend it.
        context_window: How history is fitted into the model's context (default: the model's
            context length, its tokenizer when it has one, summaries made by the model).
        context_tokens: The context length the default window fits history into (default: the
            model's `max_context`, else 32768).
        knowledge: A `KnowledgeBase` (or its folder) the agent searches.
        knowledge_mode: `tool` (the model calls `search_knowledge`) or `context` (passages
            retrieved for each question are added as cited data).
        long_term_memory: Facts about customers, kept across sessions; the model gets
            `remember` and `recall` tools scoped to the run's customer (`metadata["customer_id"]`,
            else the session id).
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
        memory: SessionStore | str | None = None,
        context_window: ContextWindow | None = None,
        context_tokens: int | None = None,
        knowledge: Any = None,
        knowledge_mode: Literal["tool", "context"] = "tool",
        long_term_memory: LongTermMemory | None = None,
        name: str = "agent",
    ) -> None:
        self.model = _resolve_model(model)
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.system_prompt = system_prompt
        self.output_type = output_type
        self.name = name
        self.memory: SessionStore | None = open_store(memory) if isinstance(memory, str) else memory
        self._window = context_window
        self._context_tokens = context_tokens
        self.knowledge = open_knowledge(knowledge)
        self.knowledge_mode = knowledge_mode
        if self.knowledge is not None and knowledge_mode == "tool":
            self.tools.add(knowledge_tool(self.knowledge))
        self.long_term_memory = long_term_memory
        if long_term_memory is not None:
            for t in long_term_tools(long_term_memory):
                self.tools.add(t)
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
        ctx: RunContext[Any] = RunContext(
            deps=deps, session_id=session_id, tenant=tenant, metadata=dict(metadata or {})
        )
        extra: list[Message] = []
        if prompt is not None and self.knowledge is not None and self.knowledge_mode == "context":
            extra, ctx.metadata["citations"] = await knowledge_context(
                self.knowledge, prompt, tenant=tenant
            )
        use_memory = session_id is not None and self.memory is not None
        use_memory = use_memory and message_history is None
        if use_memory:
            assert session_id is not None
            ctx.tenant = tenant = tenant or DEFAULT_TENANT
            messages, new_from = await self._from_session(tenant, session_id, prompt, extra)
        else:
            messages, new_from = self._conversation(prompt, message_history)
            messages[new_from:new_from] = extra
        result: RunResult[OutputT] = await self._planner_for(model_settings).run(
            messages,
            ctx,
            new_from=new_from,
            approvals=approvals,
            emit=emit,
            cancelled=cancel.is_set if cancel is not None else None,
        )
        if "citations" in ctx.metadata:
            result.metadata["citations"] = ctx.metadata["citations"]
        if use_memory and self.memory is not None and session_id is not None:
            # One atomic append per run: concurrent runs on a session never interleave turns.
            await self.memory.append(tenant or DEFAULT_TENANT, session_id, result.new_messages)
        return result

    def context_window(self) -> ContextWindow:
        """How session history is fitted into the model's context for this agent."""
        if self._window is None:
            model = self.model
            count = getattr(model, "count_tokens", None)
            reserve = self._planner.settings.max_tokens or 1024
            self._window = ContextWindow(
                max_tokens=self._context_tokens or int(getattr(model, "max_context", 32_768)),
                reserve_output=reserve,
                count_tokens=count if callable(count) else estimate_tokens,
                summarize=self._summarize,
            )
        return self._window

    async def _summarize(self, messages: list[Message], previous: str | None) -> str:
        """A summary of `messages` (and the previous summary) written by the agent's model."""
        lines = [f"Previous summary: {previous}"] if previous else []
        for m in messages:
            text = m.content or ""
            if isinstance(m, AssistantMessage) and m.tool_calls:
                text += " ".join(f"[called {c.name}({c.arguments})]" for c in m.tool_calls)
            lines.append(f"{m.role}: {text}")
        response = await self.model.request(
            [SystemMessage(content=SUMMARY_PROMPT), UserMessage(content="\n".join(lines))]
        )
        return (response.message.content or "").strip()

    async def _from_session(
        self, tenant: str, session_id: str, prompt: str | None, extra: list[Message]
    ) -> tuple[list[Message], int]:
        assert self.memory is not None
        session = await self.memory.load(tenant, session_id)
        new: list[Message] = [*extra, UserMessage(content=prompt)] if prompt is not None else []
        built = await self.context_window().build(
            self.system_prompt,
            session.messages if session else [],
            new,
            session.summary if session else None,
        )
        if built.summary_changed:
            await self.memory.set_summary(tenant, session_id, built.summary)
        messages = list(built.messages)
        return messages, len(messages) - len(new)

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

    async def aclose(self) -> None:
        """Release what the agent holds: tool HTTP pools, the model's connections, the store."""
        closers = [
            getattr(self.tools, "aclose", None),
            self.model.aclose,
            getattr(self.memory, "aclose", None),
        ]
        for close in closers:
            if close is not None:
                await close()

    def close(self) -> None:
        """Blocking form of `aclose`."""
        run_sync(self.aclose())

    async def __aenter__(self) -> Agent[OutputT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
