"""`Agent`: a model, tools and instructions; `run` / `arun` / `stream` drive the planner loop."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack, overload

from glm_agent import tracing
from glm_agent._agent_run import AgentRun
from glm_agent._knowledge import knowledge_context, knowledge_tool, open_knowledge
from glm_agent._long_term import long_term_tools
from glm_agent._output import OutputSchema
from glm_agent._run_span import text_redactor, traced_run
from glm_agent._summary import summarize
from glm_agent._sync_bridge import iterate_sync, run_sync
from glm_agent._user_input import Prompt, user_message
from glm_agent.approval import Approval, ApprovalHandler
from glm_agent.exceptions import UserError
from glm_agent.media import DEFAULT_LIMITS, MediaLimits
from glm_agent.memory import (
    ContextWindow,
    ConversationMemory,
    LongTermMemory,
    SessionStore,
    estimate_tokens,
    open_store,
)
from glm_agent.messages import Message, SystemMessage
from glm_agent.models import ChatModel
from glm_agent.planner import Planner
from glm_agent.results import AgentStreamEvent, RunDone, RunResult, UsageLimits
from glm_agent.settings import ModelSettings
from glm_agent.tools import Identity, PolicyState, RunContext, Tool, ToolRegistry, ToolSource

__all__ = ["Agent", "AgentRun", "Prompt", "RunOptions"]

OutputT = TypeVar("OutputT")

DEFAULT_TENANT = "default"


class RunOptions(TypedDict, total=False):
    """What a run takes besides the prompt (`Agent.iter`, `run`, `arun`, `stream`, `astream`)."""

    message_history: Sequence[Message] | None
    """Earlier messages of the conversation, when the caller keeps it (not with a `session_id`
    on an agent with memory: then the memory holds it)."""
    deps: Any
    """Dependencies handed to tools through `RunContext.deps`."""
    session_id: str | None
    """The conversation this run belongs to: with memory, its context is loaded from the store
    and the run's turn is appended to it."""
    tenant: str | None
    """The tenant the session is scoped to (default: `default`)."""
    approvals: Mapping[str, Approval] | None
    """Decisions on calls an earlier run deferred, by call id."""
    model_settings: ModelSettings | None
    """Settings for this run, over the agent's defaults."""
    cancel: threading.Event | None
    """Set it to stop the run between steps (`RunCancelled`)."""
    metadata: dict[str, Any] | None
    """Free-form data tools see in `RunContext.metadata` (channel, conversation id...)."""
    identity: Identity | None
    """The verified customer the run acts for, when the door knows one (a signed channel, an
    earlier verification in the conversation). Tools with `requires_identity` need it; a tool
    with `verifies_identity` sets it during the run (`RunResult.identity`)."""


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
        tools: Tools, typed functions, MCP servers (`MCPServer`), or a `ToolRegistry`.
        system_prompt: Instructions placed first in every conversation.
        output_type: Validate the answer into this type (offered to the model as a tool).
        model_settings: Default generation settings (temperature, tool_choice...).
        max_steps: Most model turns in one run.
        retries: Correctable failures allowed per tool (and for the answer) in one run.
        usage_limits: Caps on requests and tokens per run.
        approval: Decides on calls of tools marked `requires_approval` (default: defer).
        memory: Where sessions live: a `SessionStore`, a URL (`sqlite:///bot.db`,
            `redis://...`, `postgresql://...`) or a whole `ConversationMemory`. Runs with a
            `session_id` load their context from it and store their turn in it.
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
        media_limits: Size, type and count limits for images in a prompt (default:
            `MediaLimits()`: 5 MB, PNG / JPEG / GIF / WebP, 8 per message).
        name: The agent's name (for servers and logs).
    """

    def __init__(
        self,
        model: ChatModel | str,
        *,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any] | ToolSource] = (),
        system_prompt: str | None = None,
        output_type: type[OutputT] | None = None,
        model_settings: ModelSettings | None = None,
        max_steps: int = 10,
        retries: int = 2,
        usage_limits: UsageLimits | None = None,
        approval: ApprovalHandler | None = None,
        memory: SessionStore | ConversationMemory | str | None = None,
        context_window: ContextWindow | None = None,
        context_tokens: int | None = None,
        knowledge: Any = None,
        knowledge_mode: Literal["tool", "context"] = "tool",
        long_term_memory: LongTermMemory | None = None,
        media_limits: MediaLimits = DEFAULT_LIMITS,
        name: str = "agent",
    ) -> None:
        self.model = _resolve_model(model)
        self.media_limits = media_limits
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.system_prompt = system_prompt
        self.output_type = output_type
        self.name = name
        self._window = context_window
        self._conversation: ConversationMemory | None = None
        self.memory: SessionStore | None = None
        """The session store (`conversation.store`), or None."""
        if isinstance(memory, ConversationMemory):
            self.conversation = memory
        else:
            self.memory = open_store(memory) if isinstance(memory, str) else memory
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

    # --- running ---------------------------------------------------------------------------

    def iter(
        self, prompt: Prompt | None = None, *, stream: bool = False, **options: Unpack[RunOptions]
    ) -> AgentRun[OutputT]:
        """One run, stepped through: an async iterator of typed events, ending with `RunDone`.

        ```python
        async with agent.iter("Where is A-1042?", session_id="c-17") as run:
            async for event in run:
                if isinstance(event, StepStart) and event.step > 3:
                    break  # stop between steps: the model is not called again
        print(run.result)  # None when stopped early; nothing is stored then
        ```

        Every way of running an agent (`run`, `arun`, `stream`, `astream`, the HTTP server, the
        support bot, the CLI) consumes this iterator; nothing else drives the loop. A run that
        ends `deferred` (tool calls waiting for approval) is resumed by a new run with
        `approvals={call_id: Approved()}` and either the same `session_id` (with memory) or
        `message_history=result.messages`, and `prompt=None`.

        Args:
            prompt: The user's message (None to resume a deferred run): text, a `UserMessage`,
                or content parts with images (`[TextPart(...), ImagePart.from_bytes(jpeg)]`,
                or OpenAI part dicts); images are checked against `media_limits` and the
                model's `media` before anything runs (`MediaError`).
            stream: Stream the model: its text, reasoning and tool-call deltas are yielded as
                they come (otherwise each turn arrives whole, as a `ModelResponseEvent`).
            **options: See `RunOptions`.
        """
        events = self._events(prompt, stream, options)
        if tracing.enabled():
            memory = self._conversation
            events = traced_run(
                events,
                agent_name=self.name,
                model_name=str(getattr(self.model, "model", None) or self.model.name),
                session_id=options.get("session_id"),
                tenant=options.get("tenant"),
                metadata=options.get("metadata"),
                stream=stream,
                redact=text_redactor(memory.redact if memory is not None else None),
            )
        return AgentRun(events)

    async def arun(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> RunResult[OutputT]:
        """Run the agent until it answers (see `iter` and `RunOptions`).

        Returns:
            The answer with the transcript, step records, usage and timings.
        """
        async with self.iter(prompt, **options) as run:
            async for _ in run:
                pass
        assert run.result is not None  # a run that ends without raising ends with RunDone
        return run.result

    def run(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> RunResult[OutputT]:
        """Blocking form of `arun` (on glm-agent's shared sync bridge)."""
        return run_sync(self.arun(prompt, **options))

    async def astream(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> AsyncIterator[AgentStreamEvent]:
        """Run the agent with the model streamed, yielding each event; the last is `RunDone`.

        Errors of the run are raised from the iterator (see `iter` and `RunOptions`).
        """
        async with self.iter(prompt, stream=True, **options) as run:
            async for event in run:
                yield event

    def stream(
        self, prompt: Prompt | None = None, **options: Unpack[RunOptions]
    ) -> Iterator[AgentStreamEvent]:
        """Blocking form of `astream`: events are yielded as they happen."""
        yield from iterate_sync(self.astream(prompt, **options))

    async def _events(
        self, prompt: Prompt | None, stream: bool, options: RunOptions
    ) -> AsyncGenerator[AgentStreamEvent, None]:
        session_id = options.get("session_id")
        history = options.get("message_history")
        memory = self.conversation if session_id is not None else None
        if memory is not None and history is not None:
            raise UserError(
                "give message_history or a session_id, not both: with a session_id the agent's "
                "memory holds the conversation"
            )
        tenant = options.get("tenant")
        if memory is not None:
            tenant = tenant or DEFAULT_TENANT
        ctx: RunContext[Any] = RunContext(
            deps=options.get("deps"),
            session_id=session_id,
            tenant=tenant,
            metadata=dict(options.get("metadata") or {}),
            identity=options.get("identity"),
        )
        limits = self.media_limits
        if memory is not None:  # the session will keep the images: its store's limit holds too
            kept = memory.store.media_limits.max_bytes
            limits = dataclasses.replace(limits, max_bytes=min(limits.max_bytes, kept))
        new = await self._new_messages(prompt, ctx, limits)
        version: int | None = None
        if memory is not None:
            assert session_id is not None and tenant is not None
            prepared = await memory.prepare(
                session_id,
                self.system_prompt,
                new,
                tenant=tenant,
                extra_tokens=self._definition_tokens(memory.window),
            )
            messages, version = prepared.messages, prepared.version
        else:
            messages = list(history or [])
            if self.system_prompt and not any(isinstance(m, SystemMessage) for m in messages):
                messages.insert(0, SystemMessage(content=self.system_prompt))
            messages += new
        cancel = options.get("cancel")
        planner = self._planner_for(options.get("model_settings"))
        async for event in planner.iter(
            messages,
            ctx,
            new_from=len(messages) - len(new),
            approvals=options.get("approvals"),
            stream=stream,
            cancelled=cancel.is_set if cancel is not None else None,
        ):
            if isinstance(event, RunDone):
                result = event.result
                if "citations" in ctx.metadata:
                    result.metadata["citations"] = ctx.metadata["citations"]
                if memory is not None:
                    assert session_id is not None and tenant is not None
                    # One atomic append per run: concurrent runs never interleave their turns.
                    await memory.commit(
                        session_id, result.new_messages, expected_version=version, tenant=tenant
                    )
            yield event

    async def _new_messages(
        self, prompt: Prompt | None, ctx: RunContext[Any], limits: MediaLimits
    ) -> list[Message]:
        """This run's own messages: retrieved knowledge (in `context` mode), the user's turn.

        Knowledge context goes in one place for every run, right before the question it was
        retrieved for, and stays in the transcript: later turns append to the prompt instead of
        rewriting it, so a serving engine's prefix cache keeps hitting.
        """
        if prompt is None:
            return []
        model = self.model
        user = user_message(prompt, limits, model.media, model.name)
        new: list[Message] = []
        if self.knowledge is not None and self.knowledge_mode == "context" and user.text.strip():
            new, ctx.metadata["citations"] = await knowledge_context(
                self.knowledge, user.text, tenant=ctx.tenant
            )
        return [*new, user]

    def _definition_tokens(self, window: ContextWindow) -> int:
        """What the tool definitions take of the prompt (templates render them as JSON)."""
        import json

        defs = self._planner.tool_definitions(None)
        if not defs:
            return 0
        text = json.dumps([d.to_openai() for d in defs], ensure_ascii=False)
        return window.count_tokens(text) + window.message_overhead * len(defs)

    def _planner_for(self, model_settings: ModelSettings | None) -> Planner:
        if model_settings is None:
            return self._planner
        return dataclasses.replace(
            self._planner, settings=self._planner.settings.merged(model_settings)
        )

    @property
    def policy_state(self) -> PolicyState:
        """Where per-customer tool-call counts live (default: this process's memory)."""
        return self._planner.policy_state

    @policy_state.setter
    def policy_state(self, state: PolicyState) -> None:
        self._planner.policy_state = state

    # --- memory ------------------------------------------------------------------------------

    @property
    def conversation(self) -> ConversationMemory | None:
        """How sessions are loaded into the model's context and stored (None without memory).

        Built from `memory` and `context_window()` on first use; set it to install another one
        (the support bot's, which redacts what it stores).
        """
        if self._conversation is None and self.memory is not None:
            self._conversation = ConversationMemory(self.memory, self.context_window())
        return self._conversation

    @conversation.setter
    def conversation(self, memory: ConversationMemory | None) -> None:
        self._conversation = memory
        self.memory = None if memory is None else memory.store

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
                count_media=model.count_media_tokens,
            )
        return self._window

    async def _summarize(self, messages: list[Message], previous: str | None) -> str:
        """A summary of `messages` (and the previous summary) written by the agent's model."""
        return await summarize(self.model, messages, previous)

    async def aclose(self) -> None:
        """Release what the agent holds: tool HTTP pools and MCP servers, the model's
        connections, the store."""
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
