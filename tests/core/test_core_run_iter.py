"""One way through a run: `Agent.iter` is stepped, stopped and resumed; everything else uses it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from glm_agent import (
    Agent,
    AgentInfo,
    Approved,
    AssistantMessage,
    FunctionModel,
    Message,
    ModelRetry,
    RunDone,
    SystemMessage,
    TestModel,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
    tool,
)
from glm_agent._sync_bridge import iterate_sync, run_sync
from glm_agent.exceptions import GlmAgentError, ToolArgumentsError, UserError
from glm_agent.memory import open_store
from glm_agent.results import ModelResponseEvent, StepStart, ToolResultEvent
from glm_agent.tools import Tool, function_tool

calls: list[str] = []


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    calls.append(order_id)
    return f"{order_id}: shipped"


def looping(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """Calls `lookup` for ever (one new order per step)."""
    n = sum(isinstance(m, ToolMessage) for m in messages)
    return AssistantMessage(tool_calls=(ToolCall.from_args("lookup", {"order_id": f"A{n}"}),))


def test_a_run_is_stepped_through_and_stopped_between_steps(tmp_path: Path) -> None:
    calls.clear()
    seen_requests: list[int] = []

    def model(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        seen_requests.append(len(messages))
        return looping(messages, info)

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    agent = Agent(FunctionModel(model), tools=[lookup], memory=store, max_steps=50)

    async def main() -> tuple[list[Any], Any]:
        events: list[Any] = []
        async with agent.iter("where are my orders?", session_id="s") as run:
            async for event in run:
                events.append(event)
                if isinstance(event, StepStart) and event.step == 3:
                    break  # between steps: the third model call never happens
        return events, run.result

    events, result = asyncio.run(main())
    assert result is None
    assert len(seen_requests) == 2 and calls == ["A0", "A1"]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["StepStart", "ModelResponseEvent", "ToolResultEvent"] * 2 + ["StepStart"]
    response = next(e for e in events if isinstance(e, ModelResponseEvent))
    assert response.response.message.tool_calls[0].name == "lookup"
    # A run left before its end stores nothing: no half turn in the session.
    assert asyncio.run(store.load("default", "s")) is None


def test_run_arun_stream_and_astream_all_consume_iter() -> None:
    agent = Agent(TestModel(custom_output_text="ok"), tools=[lookup])
    sync = agent.run("q")
    streamed = list(agent.stream("q"))
    assert isinstance(streamed[-1], RunDone)
    assert streamed[-1].result.output == sync.output == "ok"
    # Streaming adds the model's deltas; the step structure is the same.
    assert [type(e).__name__ for e in streamed if isinstance(e, StepStart | ToolResultEvent)] == [
        type(e).__name__
        for e in asyncio.run(_collect(agent, "q"))
        if isinstance(e, StepStart | ToolResultEvent)
    ]


async def _collect(agent: Agent[Any], prompt: str) -> list[Any]:
    return [e async for e in agent.iter(prompt)]


def test_a_deferred_run_resumes_from_the_session(tmp_path: Path) -> None:
    calls.clear()
    guarded = Tool(lookup.definition, lookup.function)
    guarded.policy.requires_approval = True

    def model(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if isinstance(messages[-1], ToolMessage):
            return "done: " + messages[-1].content
        return AssistantMessage(tool_calls=(ToolCall.from_args("lookup", {"order_id": "B7"}),))

    agent = Agent(FunctionModel(model), tools=[guarded], memory=f"sqlite:///{tmp_path}/s.db")
    paused = agent.run("check B7", session_id="s")
    assert paused.status == "deferred" and calls == []
    call_id = paused.deferred_calls[0].id

    async def resume() -> list[Any]:
        async with agent.iter(None, session_id="s", approvals={call_id: Approved()}) as run:
            return [e async for e in run]

    events = asyncio.run(resume())
    assert isinstance(events[0], ToolResultEvent) and events[0].status == "ok"
    assert events[-1].result.output == "done: B7: shipped" and calls == ["B7"]
    session = asyncio.run(open_store(f"sqlite:///{tmp_path}/s.db").load("default", "s"))
    assert session is not None
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]


def test_override_args_run_the_call_with_the_servers_copy() -> None:
    calls.clear()
    guarded = Tool(lookup.definition, lookup.function)
    guarded.policy.requires_approval = True
    agent = Agent(TestModel(custom_output_text="ok"), tools=[guarded])
    paused = agent.run("q")
    call_id = paused.deferred_calls[0].id
    done = agent.run(
        message_history=paused.messages,
        approvals={call_id: Approved(override_args={"order_id": "REAL-1"})},
    )
    assert done.output == "ok" and calls == ["REAL-1"]
    bad = agent.run(
        message_history=paused.messages, approvals={call_id: Approved(override_args={"x": 1})}
    )
    assert bad.tool_calls[0].status == "invalid_arguments"


def test_message_history_with_a_session_is_refused_not_silently_ignored(tmp_path: Path) -> None:
    agent = Agent(TestModel(), memory=f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(UserError, match="message_history or a session_id"):
        agent.run("q", session_id="s", message_history=[UserMessage(content="earlier")])


class _Knowledge:
    """A knowledge source that returns one passage for any question."""

    async def asearch(
        self, query: str, k: int = 5, filters: dict[str, Any] | None = None
    ) -> list[Any]:
        return [query]

    def format_context(self, hits: list[Any]) -> str:
        return "<context>\n[1] Returns (policy.md)\nWithin 7 days.\n</context>"


def test_knowledge_context_goes_in_one_place_with_or_without_memory(tmp_path: Path) -> None:
    seen: list[list[Message]] = []

    def model(messages: list[Message], info: AgentInfo) -> str:
        seen.append(list(messages))
        return "answer"

    def agent(memory: str | None) -> Agent[str]:
        return Agent(
            FunctionModel(model),
            system_prompt="sys",
            knowledge=_Knowledge(),
            knowledge_mode="context",
            memory=memory,
        )

    agent(None).run("first?")
    with_memory = agent(f"sqlite:///{tmp_path}/s.db")
    with_memory.run("first?", session_id="s")
    assert seen[0] == seen[1]
    [sys, passage, question] = seen[0]
    assert sys == SystemMessage(content="sys")
    assert isinstance(passage, SystemMessage) and "<context>" in passage.content
    assert question == UserMessage(content="first?")
    # The next turn appends to what the model saw: the earlier prompt is its prefix.
    with_memory.run("second?", session_id="s")
    assert seen[2][: len(seen[1])] == [*seen[1], AssistantMessage(content="answer")][: len(seen[1])]
    assert seen[2][:3] == seen[1]


def test_arguments_are_validated_once_per_call() -> None:
    validated: list[dict[str, Any]] = []
    inner = function_tool(lookup.function)

    def counting(args: dict[str, Any]) -> dict[str, Any]:
        validated.append(dict(args))
        return inner.validate(args)

    counted = Tool(inner.definition, inner.function, validator=counting)
    Agent(TestModel(custom_output_text="ok"), tools=[counted]).run("q")
    assert len(validated) == 1


def test_the_output_tool_is_known_by_its_kind_not_its_name() -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    agent = Agent(TestModel(custom_output_args={"text": "hi"}), output_type=Answer)
    assert agent.run("q").output == Answer(text="hi")

    @tool
    def final_result(x: int) -> str:
        """A user tool that happens to take the output tool's name.

        Args:
            x: A number.
        """
        return "x"

    with pytest.raises(UserError, match="taken by the agent's structured output"):
        Agent(TestModel(), tools=[final_result], output_type=Answer)
    assert ToolDefinition(name="final_result").kind == "function"


def test_model_retry_is_not_a_glm_agent_error() -> None:
    # Catch-alls for glm-agent errors (the HTTP error table, the CLI) never swallow a retry.
    assert not issubclass(ModelRetry, GlmAgentError)
    assert issubclass(ToolArgumentsError, ModelRetry)


def test_the_sync_bridge_fails_waiting_calls_when_its_loop_dies() -> None:
    entered = threading.Event()

    async def stop_the_loop() -> None:
        raise SystemExit("stopped by a tool")

    async def wait_forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    outcome: list[BaseException] = []

    def waiter() -> None:
        try:
            run_sync(wait_forever())
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=waiter)
    thread.start()
    assert entered.wait(10)
    with pytest.raises(RuntimeError, match="SystemExit: stopped by a tool"):
        run_sync(stop_the_loop())
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], RuntimeError)
    # The next call starts a healthy loop.
    assert list(iterate_sync(_count(3))) == [0, 1, 2]


async def _count(n: int) -> Any:
    for i in range(n):
        yield i
