"""LangChain interop both ways, with FunctionModel, LangChain's fakes, and real HTTP models."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langchain_core import messages as lc
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.tools import tool as lc_tool
from langchain_openai import ChatOpenAI
from models_remote_server import ANSWER, ARGS, REASONING, FakeOpenAIServer
from pydantic import BaseModel, SecretStr

from glm_agent.exceptions import ModelError, ModelHTTPError, UserError
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallStart,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from glm_agent.models.base import ChatModel
from glm_agent.models.function import AgentInfo, FunctionModel
from glm_agent.models.langchain import from_langchain, to_langchain
from glm_agent.models.openai_compat import OpenAICompatibleModel
from glm_agent.settings import ModelSettings

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK: list[Message] = [UserMessage(content="Weather in Paris?")]


def scripted(messages: list[Message], info: AgentInfo) -> AssistantMessage:
    """Calls the first offered tool once, then answers with what the tool said."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AssistantMessage(content=f"The tool said {last.content}. Anything else?")
    if info.tools and info.settings.tool_choice != "none":
        call = ToolCall.from_args(info.tools[0].name, {"city": "Paris", "days": 2}, id="call_1")
        return AssistantMessage(content="Checking.", tool_calls=(call,))
    return AssistantMessage(content=f"You said: {getattr(last, 'content', '')}")


def final(events: list[ModelStreamEvent]) -> ModelResponse:
    done = events[-1]
    assert isinstance(done, ResponseDone)
    return done.response


def test_glm_agent_model_as_langchain_model() -> None:
    @lc_tool
    def get_weather(city: str, days: int = 1) -> str:
        """Weather for a city.

        Args:
            city: City name.
            days: Days of forecast.
        """
        return "sunny"

    chat = to_langchain(FunctionModel(scripted))
    plain = chat.invoke("hello there")
    assert plain.content == "You said: hello there"
    assert plain.usage_metadata is not None
    assert plain.usage_metadata["input_tokens"] > 0
    bound = chat.bind_tools([get_weather])
    ai = bound.invoke([lc.HumanMessage(content="Weather in Paris?")])
    assert isinstance(ai, lc.AIMessage)
    assert [(c["name"], c["args"]) for c in ai.tool_calls] == [
        ("get_weather", {"city": "Paris", "days": 2})
    ]
    assert ai.response_metadata["finish_reason"] == "tool_calls"
    chunks: list[Any] = list(bound.stream([lc.HumanMessage(content="Weather in Paris?")]))
    assert len(chunks) > 3
    assert any(c.tool_call_chunks for c in chunks)
    merged: Any = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert isinstance(merged, lc.AIMessageChunk)
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        ("get_weather", {"city": "Paris", "days": 2}, merged.tool_calls[0]["id"])
    ]
    assert merged.content == "Checking."
    tool_result = get_weather.invoke(merged.tool_calls[0])
    assert isinstance(tool_result, lc.ToolMessage)
    answer = bound.invoke([lc.HumanMessage(content="Weather in Paris?"), ai, tool_result])
    assert answer.content == "The tool said sunny. Anything else?"
    none = bound.invoke("Weather?", tool_choice="none")
    assert none.tool_calls == []

    async def astream() -> list[Any]:
        return [c async for c in bound.astream("Weather in Paris?")]

    achunks = asyncio.run(astream())
    assert sum(len(c.tool_call_chunks) for c in achunks) == sum(
        len(c.tool_call_chunks) for c in chunks
    )
    assert asyncio.run(chat.ainvoke("hi")).content == "You said: hi"


def test_pydantic_tools_and_settings_kwargs() -> None:
    seen: list[AgentInfo] = []

    def fn(messages: list[Message], info: AgentInfo) -> str:
        seen.append(info)
        return "ok"

    class Lookup(BaseModel):
        """Look up an order."""

        order_id: str

    chat = to_langchain(FunctionModel(fn), settings=ModelSettings(max_tokens=50))
    chat.bind_tools([Lookup], tool_choice="any").invoke("q", stop=["\n"], temperature=0.1, x=1)
    info = seen[-1]
    assert info.tool_names == ["Lookup"]
    assert info.tools[0].parameters["required"] == ["order_id"]
    assert info.settings.tool_choice == "required"
    assert (info.settings.max_tokens, info.settings.temperature) == (50, 0.1)
    assert info.settings.stop == ["\n"]
    assert info.settings.extra == {"x": 1}


@pytest.mark.parametrize("tools", [[], [WEATHER]])
def test_round_trip_behaves_like_the_original(tools: list[ToolDefinition]) -> None:
    original = FunctionModel(scripted)
    twice = from_langchain(to_langchain(original))
    direct = original.request_sync(ASK, tools)
    assert twice.request_sync(ASK, tools) == direct
    streamed = final(list(twice.stream_sync(ASK, tools)))
    assert streamed.message.content == direct.message.content
    assert [(c.name, c.args_dict()) for c in streamed.message.tool_calls] == [
        (c.name, c.args_dict()) for c in direct.message.tool_calls
    ]
    assert streamed.usage == direct.usage
    assert streamed.finish_reason == direct.finish_reason


def test_round_trip_over_http_keeps_reasoning_and_deltas(fake_server: FakeOpenAIServer) -> None:
    http = OpenAICompatibleModel(
        f"glm:{uuid.uuid4().hex[:6]}", base_url=fake_server.base_url + "/v1", provider="vllm"
    )
    twice = from_langchain(to_langchain(http))
    direct, wrapped = http.request_sync(ASK, [WEATHER]), twice.request_sync(ASK, [WEATHER])
    assert wrapped == direct
    assert wrapped.message.reasoning == REASONING
    events = list(twice.stream_sync(ASK, [WEATHER]))
    assert [e.delta for e in events if isinstance(e, ToolCallArgsDelta)] == [
        e.delta for e in http.stream_sync(ASK, [WEATHER]) if isinstance(e, ToolCallArgsDelta)
    ]
    assert final(events).message == direct.message
    http.close()


def test_langchain_fakes_as_glm_agent_models() -> None:
    call = lc.AIMessage(
        content="",
        tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}],
        usage_metadata={"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
    )
    fake = FakeMessagesListChatModel(responses=[call, lc.AIMessage(content=ANSWER)])
    model: ChatModel = from_langchain(fake, bind_tools=False)
    first = model.request_sync(ASK, [WEATHER])
    assert first.message.tool_calls == (ToolCall(id="c1", name="get_weather", arguments=ARGS),)
    assert (first.finish_reason, first.usage.input_tokens, first.usage.output_tokens) == (
        "tool_calls",
        5,
        3,
    )
    history: list[Message] = [
        *ASK,
        first.message,
        ToolMessage(content="sunny", tool_call_id="c1"),
    ]
    second = final(list(model.stream_sync(history, [WEATHER])))
    assert second.message.content == ANSWER
    with pytest.raises(UserError, match="bind_tools=False"):
        from_langchain(fake).request_sync(ASK, [WEATHER])

    generic = from_langchain(GenericFakeChatModel(messages=iter(["Hello from a fake model"])))
    events = list(generic.stream_sync(ASK))
    pieces = [e.content for e in events if isinstance(e, TextDelta)]
    assert len(pieces) > 3
    assert "".join(pieces) == "Hello from a fake model" == final(events).message.content


def test_chat_openai_against_the_fake_server(fake_server: FakeOpenAIServer) -> None:
    """A real LangChain provider model (ChatOpenAI) over real HTTP, as a glm-agent model."""
    name = f"glm:{uuid.uuid4().hex[:6]}"
    chat = ChatOpenAI(
        model=name,
        base_url=fake_server.base_url + "/v1",
        api_key=SecretStr("k"),
        max_retries=0,
    )
    model = from_langchain(chat)
    r = model.request_sync(ASK, [WEATHER], ModelSettings(tool_choice="get_weather"))
    assert [(c.id, c.name, c.args_dict()) for c in r.message.tool_calls] == [
        ("call_abc123", "get_weather", {"city": "Paris"})
    ]
    assert fake_server.last(name)["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    events = list(model.stream_sync(ASK, [WEATHER]))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.id, s.name) for s in starts] == [("call_abc123", "get_weather")]
    assert sum(isinstance(e, ToolCallArgsDelta) for e in events) > 1
    assert final(events).message.tool_calls == r.message.tool_calls


def test_provider_errors_become_model_errors(fake_server: FakeOpenAIServer) -> None:
    name = f"400:{uuid.uuid4().hex[:6]}"
    chat = ChatOpenAI(
        model=name, base_url=fake_server.base_url + "/v1", api_key=SecretStr("k"), max_retries=0
    )
    model = from_langchain(chat)
    with pytest.raises(ModelHTTPError) as info:
        model.request_sync(ASK)
    assert info.value.status_code == 400
    assert "tools: bad schema" in info.value.body
    with pytest.raises(ModelHTTPError):
        list(model.stream_sync(ASK))
    broken = from_langchain(FakeMessagesListChatModel(responses=[]))  # IndexError inside
    with pytest.raises(ModelError, match="IndexError"):
        broken.request_sync(ASK)
