"""Tool calls that survive the serving engine: each failure shape of vLLM / SGLang's GLM tool
parsers, replayed by a real HTTP server on 127.0.0.1, against `server_tool_calls` trust / repair /
own, streamed and not."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from models_remote_server import RAW_MARKUP, FakeOpenAIServer

from glm_agent import Agent, tool
from glm_agent.agent_config import load_agent
from glm_agent.exceptions import UserError
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
    UserMessage,
)
from glm_agent.models._tool_repair import CallRepair
from glm_agent.models.openai_compat import OpenAICompatibleModel
from glm_agent.models.resolve import resolve_model

TOOLS = [
    ToolDefinition(
        name="get_weather",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    ),
    ToolDefinition(name="get_time"),
    ToolDefinition(
        name="calc", parameters={"type": "object", "properties": {"expr": {"type": "string"}}}
    ),
    ToolDefinition(
        name="lookup",
        parameters={
            "type": "object",
            "properties": {
                "ids": {"type": "array", "items": {"type": "integer"}},
                "code": {"type": ["string", "null"]},
                "note": {},
            },
        },
    ),
]
ASK: list[Message] = [UserMessage(content="Weather in Paris for 3 days, and the time?")]


OPEN: list[OpenAICompatibleModel] = []


@pytest.fixture(autouse=True)
def close_models() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def model_for(server: FakeOpenAIServer, shape: str, **kw: Any) -> OpenAICompatibleModel:
    kw.setdefault("provider", "vllm")
    model = OpenAICompatibleModel(
        f"{shape}:{uuid.uuid4().hex[:8]}", base_url=server.base_url + "/v1", backoff=0.01, **kw
    )
    OPEN.append(model)
    return model


def turn(
    model: OpenAICompatibleModel, stream: bool
) -> tuple[ModelResponse, list[ModelStreamEvent]]:
    if not stream:
        return model.request_sync(ASK, TOOLS), []
    events = list(model.stream_sync(ASK, TOOLS))
    done = events[-1]
    assert isinstance(done, ResponseDone)
    return done.response, events


def calls_of(r: ModelResponse) -> list[tuple[str, Any]]:
    out = []
    for c in r.message.tool_calls:
        try:
            out.append((c.name, json.loads(c.arguments)))
        except ValueError:
            out.append((c.name, c.arguments))
    return out


def check_events(
    events: list[ModelStreamEvent], r: ModelResponse, served: dict[str, str] | None = None
) -> None:
    """Streamed events agree with the answer: committed calls, their deltas, the text. A call
    repaired at the end streamed the server's arguments (`served`: id → what it sent)."""
    if not events:
        return
    ends = [e.call for e in events if isinstance(e, ToolCallEnd)]
    assert ends == list(r.message.tool_calls)
    for c in ends:
        assert any(isinstance(e, ToolCallStart) and e.id == c.id for e in events)
        deltas = [e.delta for e in events if isinstance(e, ToolCallArgsDelta) and e.id == c.id]
        assert "".join(deltas) == (served or {}).get(c.id, c.arguments)
    if r.message.content is not None:
        assert "".join(e.content for e in events if isinstance(e, TextDelta)) == r.message.content
    assert len({e.index for e in events if isinstance(e, ToolCallEnd)}) == len(ends)


WEATHER = ("get_weather", {"city": "Paris", "days": 3})


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("policy", ["repair", "own"])
def test_markup_left_in_content_is_read(
    fake_server: FakeOpenAIServer, stream: bool, policy: str
) -> None:
    model = model_for(fake_server, "rawmarkup", server_tool_calls=policy)
    r, events = turn(model, stream)
    assert calls_of(r) == [WEATHER, ("get_time", {})]  # the no-argument call too
    assert r.message.content == "Let me check."
    assert r.finish_reason == "tool_calls"
    assert not any("<tool_call>" in e.content for e in events if isinstance(e, TextDelta))
    check_events(events, r)


@pytest.mark.parametrize("stream", [False, True])
def test_trust_takes_the_server_at_its_word(fake_server: FakeOpenAIServer, stream: bool) -> None:
    model = model_for(fake_server, "rawmarkup", server_tool_calls="trust")
    r, _ = turn(model, stream)
    assert r.message.tool_calls == () and r.message.content == RAW_MARKUP
    r, _ = turn(model_for(fake_server, "strnum", server_tool_calls="trust"), stream)
    assert calls_of(r)[0] == ("get_weather", {"city": "Paris", "days": "3"})


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("policy", ["repair", "own"])
def test_string_typed_numbers_and_double_encoded_arrays(
    fake_server: FakeOpenAIServer, stream: bool, policy: str
) -> None:
    r, events = turn(model_for(fake_server, "strnum", server_tool_calls=policy), stream)
    assert calls_of(r) == [WEATHER, ("lookup", {"ids": [1, 2]})]
    assert [c.id for c in r.message.tool_calls] == ["call_s1", "call_s2"]  # the server's ids
    served = {"call_s1": '{"city": "Paris", "days": "3"}', "call_s2": '{"ids": "[1, 2]"}'}
    check_events(events, r, served)


@pytest.mark.parametrize("shape", ["dropnoarg", "ltvalue"])
def test_a_stream_whose_calls_the_server_lost_is_asked_again(
    fake_server: FakeOpenAIServer, shape: str
) -> None:
    model = model_for(fake_server, shape)  # vllm: repair by default
    assert model.server_tool_calls == "repair"
    r, events = turn(model, stream=True)
    expected = {"dropnoarg": [("get_time", {})], "ltvalue": [("calc", {"expr": "1 <"})]}[shape]
    assert calls_of(r) == expected
    sent = [b for b in fake_server.requests if b.get("model") == model.model]
    assert [b["stream"] for b in sent] == [True, False]  # the one-shot answer was asked once
    assert "stream_options" not in sent[1] and sent[1]["messages"] == sent[0]["messages"]
    assert r.usage.requests == 2 and r.usage.input_tokens == 24
    check_events(events, r)
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    if shape == "ltvalue":  # the broken streamed call was announced, never committed
        assert len(starts) == 2 and starts[0].index == 0 and starts[1].index == 1


@pytest.mark.parametrize("shape", ["dropnoarg", "ltvalue"])
def test_trust_keeps_what_the_stream_gave(fake_server: FakeOpenAIServer, shape: str) -> None:
    model = model_for(fake_server, shape, server_tool_calls="trust")
    r, _ = turn(model, stream=True)
    if shape == "dropnoarg":
        assert r.message.tool_calls == ()
    else:  # not JSON: the agent loop answers it as invalid arguments; it never runs
        assert r.message.tool_calls[0].arguments == '{"expr": "1 <</arg_value>}'
    assert len([b for b in fake_server.requests if b.get("model") == model.model]) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_own_reads_every_call_with_glm_agents_typing(
    fake_server: FakeOpenAIServer, stream: bool
) -> None:
    r, _ = turn(model_for(fake_server, "typed", server_tool_calls="own"), stream)
    assert calls_of(r) == [("lookup", {"code": "404", "note": 42})]  # README §5 typing
    r, _ = turn(model_for(fake_server, "typed", server_tool_calls="repair"), stream)
    assert calls_of(r) == [("lookup", {"code": "404", "note": "42"})]  # only what the schema says


def test_async_stream_repairs_too(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server, "dropnoarg")

    async def main() -> list[ModelStreamEvent]:
        events = [e async for e in model.request_stream(ASK, TOOLS)]
        await model.aclose()
        return events

    events = asyncio.run(main())
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert calls_of(done.response) == [("get_time", {})]


def test_the_agent_runs_the_recovered_calls(fake_server: FakeOpenAIServer) -> None:
    ran: list[tuple[str, int]] = []

    @tool
    def get_weather(city: str, days: int = 1) -> str:
        """Weather for a city.

        Args:
            city: The city.
            days: How many days.
        """
        ran.append((city, days))
        return "sunny"

    @tool
    def get_time() -> str:
        """The time now."""
        return "12:00"

    model = model_for(fake_server, "rawmarkup")
    result = Agent(model=model, tools=[get_weather, get_time]).run("Weather in Paris?")
    assert ran == [("Paris", 3)]
    assert result.output == "It is sunny in Paris, 21 °C."


def test_the_setting_is_reachable_from_strings_and_yaml(tmp_path: Path) -> None:
    for spec, default in [
        ("vllm:http://h:8000/v1#glm-4.7", "repair"),
        ("sglang:glm-5.1", "repair"),
        ("zhipu:glm-4.5", "trust"),
        ("openai:http://h/v1#glm-4.5", "trust"),
    ]:
        model = resolve_model(spec)
        assert isinstance(model, OpenAICompatibleModel)
        assert model.server_tool_calls == default
    model = resolve_model("vllm:http://h:8000/v1#glm-4.7", server_tool_calls="own")
    assert isinstance(model, OpenAICompatibleModel) and model.server_tool_calls == "own"
    with pytest.raises(UserError, match="choices: trust, repair, own"):
        resolve_model("vllm:glm-4.7", server_tool_calls="fix")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "model:\n  name: vllm:http://h:8000/v1#glm-5.1\n  options: {server_tool_calls: trust}\n"
    )
    agent = load_agent(cfg)
    assert isinstance(agent.model, OpenAICompatibleModel)
    assert agent.model.server_tool_calls == "trust"


def test_calls_never_run_when_unrecoverable() -> None:
    """A damaged call from markup keeps its raw text (not JSON): reported, never run."""
    repair = CallRepair(TOOLS, "repair")
    broken = "<tool_call>calc<arg_key>expr</arg_key><arg_value>1<arg_key>x</arg_value></tool_call>"
    fixed = repair.repair(AssistantMessage(content=broken))
    (call,) = fixed.tool_calls
    assert call.name == "calc" and call.arguments.startswith("<arg_key>expr")
    bad = ToolCall(name="calc", arguments='{"expr": "1 <</arg_value>}')
    assert repair.fix_call(bad) == bad
