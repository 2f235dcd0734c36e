"""The agent loop, driven by FunctionModel and TestModel."""

from __future__ import annotations

import asyncio
import json
import threading

import jsonschema
import pytest
from pydantic import BaseModel

from glm_agent import (
    Agent,
    AgentInfo,
    AssistantMessage,
    Deferred,
    FunctionModel,
    Message,
    ModelSettings,
    Rejected,
    RunDone,
    TestModel,
    ToolCall,
    ToolMessage,
    UsageLimits,
    UserMessage,
    tool,
)
from glm_agent.exceptions import (
    MaxStepsExceeded,
    RetriesExhausted,
    RunCancelled,
    UsageLimitExceeded,
)
from glm_agent.messages import TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart
from glm_agent.results import StepStart, ToolResultEvent


@tool
def get_weather(city: str) -> dict[str, str]:
    """Current weather.

    Args:
        city: City name.
    """
    return {"city": city, "sky": "sunny"}


def call(name: str, **args: object) -> ToolCall:
    return ToolCall.from_args(name, dict(args))


def scripted(*turns: AssistantMessage | str) -> FunctionModel:
    """A model that plays `turns` in order, one per request."""
    it = iter(turns)
    return FunctionModel(lambda messages, info: next(it))


def tool_results(messages: list[Message]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def test_tool_call_then_answer_transcript() -> None:
    model = scripted(AssistantMessage(tool_calls=(call("get_weather", city="Paris"),)), "Sunny.")
    result = Agent(model, tools=[get_weather], system_prompt="Be brief.").run("Weather?")
    assert result.output == "Sunny."
    assert [m.role for m in result.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert json.loads(tool_results(result.messages)[0].content) == {"city": "Paris", "sky": "sunny"}
    assert result.usage.requests == 2
    assert len(result.steps) == 2 and result.steps[0].tool_calls[0].status == "ok"
    assert all(s.total_seconds >= s.model_seconds for s in result.steps)
    assert result.new_messages[0] == UserMessage(content="Weather?")


def test_concurrent_async_calls_really_overlap() -> None:
    # Each call waits until the other has started: they finish only if they run at once.
    started = {"a": asyncio.Event, "b": asyncio.Event}
    events: dict[str, asyncio.Event] = {}

    @tool(timeout=5)
    async def wait_for(me: str, other: str) -> str:
        """Meet the other call.

        Args:
            me: This call's name.
            other: The other call's name.
        """
        events.setdefault(me, asyncio.Event()).set()
        await asyncio.wait_for(events.setdefault(other, asyncio.Event()).wait(), 3)
        return f"{me} met {other}"

    model = scripted(
        AssistantMessage(
            tool_calls=(call("wait_for", me="a", other="b"), call("wait_for", me="b", other="a"))
        ),
        "done",
    )
    result = Agent(model, tools=[wait_for]).run("go")
    assert [r.status for r in result.tool_calls] == ["ok", "ok"]
    assert [m.content for m in tool_results(result.messages)] == ["a met b", "b met a"]
    assert started  # keep the names used


def test_concurrent_sync_calls_run_in_threads() -> None:
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def meet(n: int) -> int:
        """Wait for the other thread.

        Args:
            n: A number.
        """
        barrier.wait()  # raises BrokenBarrierError unless both calls run at the same time
        return n

    model = scripted(AssistantMessage(tool_calls=(call("meet", n=1), call("meet", n=2))), "ok")
    result = Agent(model, tools=[meet]).run("go")
    assert [r.status for r in result.tool_calls] == ["ok", "ok"]


def test_timeout_cancels_slow_tool_and_model_sees_it() -> None:
    cancelled = threading.Event()

    @tool(timeout=0.2)
    async def slow() -> str:
        """Takes forever."""
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    seen: list[str] = []

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if not isinstance(messages[-1], ToolMessage):
            return AssistantMessage(tool_calls=(call("slow"),))
        seen.append(messages[-1].content)
        return "sorry, it timed out"

    result = Agent(FunctionModel(model_fn), tools=[slow]).run("go")
    assert cancelled.is_set()
    assert seen == ["tool 'slow' timed out after 0.2 s"]
    assert result.tool_calls[0].status == "timeout"


def test_bad_arguments_unknown_tool_and_exceptions_go_back_to_the_model() -> None:
    @tool
    def boom(x: int) -> int:
        """Fails.

        Args:
            x: Anything.
        """
        raise ValueError("database offline")

    model = scripted(
        AssistantMessage(
            tool_calls=(
                call("get_weather", town="Paris"),
                call("get_wether", city="Paris"),
                call("boom", x=1),
            )
        ),
        "I could not do it.",
    )
    result = Agent(model, tools=[get_weather, boom]).run("go")
    contents = [m.content for m in tool_results(result.messages)]
    assert "missing required argument: 'city'" in contents[0]
    assert "unexpected argument: 'town'" in contents[0]
    assert "did you mean 'get_weather'" in contents[1] and "tools: boom, get_weather" in contents[1]
    # An unexpected failure: the model hears that it failed, with a reference, never the
    # exception's text (it may hold internals); the record keeps the detail for people.
    failed = json.loads(contents[2])
    assert failed["error"] == "tool_failed" and failed["reference"].startswith("E-")
    assert "database offline" not in contents[2]
    [record] = [r for r in result.tool_calls if r.call.name == "boom"]
    assert record.detail == f"{failed['reference']}: ValueError: database offline"
    assert all(m.is_error for m in tool_results(result.messages))


def test_retry_budget_ends_with_clear_error() -> None:
    attempts = []

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage:
        attempts.append(1)
        return AssistantMessage(tool_calls=(call("get_weather", city=7),))

    agent = Agent(FunctionModel(model_fn), tools=[get_weather], retries=2)
    with pytest.raises(RetriesExhausted, match="tool 'get_weather' failed 3 times") as info:
        agent.run("go")
    assert len(attempts) == 3
    assert isinstance(info.value.messages[-1], ToolMessage)


def test_success_resets_the_retry_budget() -> None:
    turns = []
    for _ in range(3):
        turns.append(AssistantMessage(tool_calls=(call("get_weather", city=1),)))
        turns.append(AssistantMessage(tool_calls=(call("get_weather", city="x"),)))
    result = Agent(scripted(*turns, "done"), tools=[get_weather], retries=1, max_steps=10).run("go")
    assert result.output == "done"


def test_max_steps_and_usage_limits() -> None:
    looping = FunctionModel(
        lambda m, i: AssistantMessage(tool_calls=(call("get_weather", city="a"),))
    )
    with pytest.raises(MaxStepsExceeded, match="max_steps=3"):
        Agent(looping, tools=[get_weather], max_steps=3).run("go")
    with pytest.raises(UsageLimitExceeded, match="request_limit of 2"):
        Agent(looping, tools=[get_weather], usage_limits=UsageLimits(request_limit=2)).run("go")
    with pytest.raises(UsageLimitExceeded, match="output_tokens_limit"):
        Agent(
            FunctionModel(lambda m, i: "word " * 50),
            usage_limits=UsageLimits(output_tokens_limit=10),
        ).run("go")


def test_tool_choice_none_required_and_named() -> None:
    offered: list[list[str]] = []

    def model_fn(messages: list[Message], info: AgentInfo) -> str | AssistantMessage:
        offered.append(info.tool_names)
        if info.settings.tool_choice == "get_weather":
            return AssistantMessage(tool_calls=(call("get_weather", city="Rome"),))
        return "plain answer"

    agent = Agent(FunctionModel(model_fn), tools=[get_weather])
    assert agent.run("x", model_settings=ModelSettings(tool_choice="none")).output == "plain answer"
    assert offered[-1] == []
    result = agent.run("x", model_settings=ModelSettings(tool_choice="get_weather"))
    assert result.tool_calls[0].call.name == "get_weather"  # forced on the first turn only
    assert result.output == "plain answer"
    with pytest.raises(RetriesExhausted, match="you must call one of the tools"):
        agent.run("x", model_settings=ModelSettings(tool_choice="required"))


def test_approval_approve_reject_and_defer_then_resume() -> None:
    ran: list[str] = []

    @tool(requires_approval=True)
    def refund(order_id: str) -> str:
        """Refund an order.

        Args:
            order_id: Order.
        """
        ran.append(order_id)
        return "refunded"

    def turns() -> FunctionModel:
        return scripted(AssistantMessage(tool_calls=(call("refund", order_id="A1"),)), "done")

    assert Agent(turns(), tools=[refund], approval=lambda c, tc, a: True).run("go").output == "done"
    assert ran == ["A1"]

    result = Agent(
        turns(), tools=[refund], approval=lambda c, tc, a: Rejected("over the limit")
    ).run("go")
    assert tool_results(result.messages)[0].content == "the call was not approved: over the limit"
    assert ran == ["A1"]

    agent = Agent(turns(), tools=[refund])  # no handler: deferred
    paused = agent.run("go")
    assert paused.status == "deferred" and paused.deferred_calls[0].name == "refund"
    assert ran == ["A1"]
    resumed = agent.run(
        message_history=paused.messages, approvals={paused.deferred_calls[0].id: Deferred()}
    )
    assert resumed.status == "deferred"
    from glm_agent import Approved

    done = agent.run(
        message_history=paused.messages, approvals={paused.deferred_calls[0].id: Approved()}
    )
    assert done.output == "done" and ran == ["A1", "A1"]


class Weather(BaseModel):
    city: str
    celsius: float


def test_structured_output_validated_and_reasked() -> None:
    bad = AssistantMessage(tool_calls=(call("final_result", city="Oslo", celsius="cold"),))
    good = AssistantMessage(tool_calls=(call("final_result", city="Oslo", celsius=-3),))
    result = Agent(scripted(bad, good), output_type=Weather).run("weather?")
    assert result.output == Weather(city="Oslo", celsius=-3.0)
    assert "celsius" in tool_results(result.messages)[0].content

    text_json = scripted('```json\n{"city": "Rome", "celsius": 20}\n```')
    assert Agent(text_json, output_type=Weather).run("x").output.city == "Rome"

    numbers = scripted(
        "not json", AssistantMessage(tool_calls=(call("final_result", result=[1, 2]),))
    )
    out = Agent(numbers, output_type=list[int]).run("x")
    assert out.output == [1, 2]
    assert "final_result" in out.messages[2].content  # the re-ask names the tool


def test_stream_events_in_order_and_text_equals_output() -> None:
    model = scripted(
        AssistantMessage(tool_calls=(call("get_weather", city="Paris"),)),
        "It is sunny in Paris today, 22 degrees.",
    )
    events = list(Agent(model, tools=[get_weather]).stream("Weather?"))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "StepStart" and kinds[-1] == "RunDone"
    start = kinds.index("ToolCallStart")
    assert start < kinds.index("ToolCallEnd") < kinds.index("ToolResultEvent")
    last_step = max(i for i, e in enumerate(events) if isinstance(e, StepStart))
    text = "".join(e.content for e in events[last_step:] if isinstance(e, TextDelta))
    done = events[-1]
    assert isinstance(done, RunDone)
    assert text == done.result.output
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    end = kinds.index("ToolCallEnd")
    end_event = events[end]
    assert isinstance(events[start], ToolCallStart) and isinstance(end_event, ToolCallEnd)
    args = "".join(e.delta for e in events[start + 1 : end] if isinstance(e, ToolCallArgsDelta))
    assert args == end_event.call.arguments and json.loads(args) == {"city": "Paris"}
    assert any(isinstance(e, ToolResultEvent) and e.status == "ok" for e in events)


def test_stream_function_model_scripts_deltas() -> None:
    def stream_fn(messages: list[Message], info: AgentInfo):  # type: ignore[no-untyped-def]
        if isinstance(messages[-1], ToolMessage):
            yield from ["Hel", "lo ", "there"]
        else:
            yield "Checking. "
            yield call("get_weather", city="Oslo")

    result = Agent(FunctionModel(stream_function=stream_fn), tools=[get_weather]).run("x")
    assert result.output == "Hello there"
    assert result.messages[1].content == "Checking. "  # type: ignore[union-attr]


def test_cancel_between_steps() -> None:
    stop = threading.Event()

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage:
        stop.set()
        return AssistantMessage(tool_calls=(call("get_weather", city="a"),))

    with pytest.raises(RunCancelled):
        Agent(FunctionModel(model_fn), tools=[get_weather]).run("go", cancel=stop)


class Item(BaseModel):
    sku: str
    qty: int


def test_test_model_calls_every_tool_with_schema_valid_arguments() -> None:
    @tool
    def order(items: list[Item], express: bool, note: str | None = None) -> int:
        """Order.

        Args:
            items: Items.
            express: Express.
            note: Note.
        """
        return len(items)

    result = Agent(TestModel(), tools=[get_weather, order]).run("x")
    calls = [r.call for r in result.tool_calls]
    assert {c.name for c in calls} == {"get_weather", "order"}
    for c, t in zip(calls, [get_weather, order], strict=True):
        jsonschema.validate(c.args_dict(), t.definition.parameters)
    assert all(r.status == "ok" for r in result.tool_calls)
    by_tool = {m.name: m.content for m in tool_results(result.messages)}
    assert json.loads(result.output) == by_tool and by_tool["order"] == "1"

    structured = Agent(TestModel(), tools=[get_weather], output_type=Weather).run("x")
    assert isinstance(structured.output, Weather)


def test_async_api_and_sync_inside_running_loop() -> None:
    agent = Agent(scripted("hi"))

    async def main() -> str:
        result = await agent.arun("x")
        return result.output

    assert asyncio.run(main()) == "hi"

    async def nested() -> str:
        return Agent(scripted("inner")).run("x").output  # sync API from inside a loop

    assert asyncio.run(nested()) == "inner"
