"""OpenAICompatibleModel in chat mode against a real HTTP server speaking like vLLM and Zhipu."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import openai
import pytest
from models_remote_server import ANSWER, ARGS, REASONING, FakeOpenAIServer

from glm_agent.exceptions import ModelError, ModelHTTPError, UserError
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from glm_agent.models.openai_compat import OpenAICompatibleModel
from glm_agent.settings import ModelSettings

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK: list[Message] = [UserMessage(content="Weather in Paris?")]
CALL = ToolCall(id="call_abc123", name="get_weather", arguments=ARGS)
AFTER_TOOL: list[Message] = [
    *ASK,
    AssistantMessage(tool_calls=(CALL,)),
    ToolMessage(content='{"temp": 21}', tool_call_id="call_abc123", name="get_weather"),
]


def model_for(server: FakeOpenAIServer, scenario: str = "glm", **kw: Any) -> OpenAICompatibleModel:
    kw.setdefault("provider", "vllm")
    kw.setdefault("backoff", 0.01)
    return OpenAICompatibleModel(
        f"{scenario}:{uuid.uuid4().hex[:8]}", base_url=server.base_url + "/v1", **kw
    )


def collect(
    model: OpenAICompatibleModel, messages: list[Message], **kw: Any
) -> tuple[list[ModelStreamEvent], ModelResponse]:
    events = list(model.stream_sync(messages, **kw))
    done = events[-1]
    assert isinstance(done, ResponseDone)
    return events, done.response


def test_tool_call_with_reasoning_and_usage(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server)
    settings = ModelSettings(
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        seed=7,
        top_k=5,
        tool_choice="get_weather",
        enable_thinking=True,
        stop=["END"],
        extra={"chat_template_kwargs": {"foo": 1}, "priority": 3},
    )
    r = model.request_sync(ASK, [WEATHER], settings)
    assert r.message.tool_calls == (CALL,)
    assert r.message.reasoning == REASONING
    assert r.message.content is None
    assert r.finish_reason == "tool_calls"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.requests) == (12, 7, 1)
    assert r.model_name == model.model
    body = fake_server.last(model.model)
    assert body["tools"] == [WEATHER.to_openai()]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["chat_template_kwargs"] == {"enable_thinking": True, "foo": 1}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.2,
        0.9,
        64,
        7,
    )
    assert (body["top_k"], body["stop"], body["priority"], body["stream"]) == (5, ["END"], 3, False)
    answer = model.request_sync(AFTER_TOOL, [WEATHER])
    assert answer.message.content == ANSWER
    assert answer.finish_reason == "stop"
    sent = fake_server.last(model.model)["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ARGS}
    assert sent[2] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_abc123"}
    model.close()


def test_stream_deltas_equal_the_non_streamed_turn(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server)
    events, streamed = collect(model, ASK, tools=[WEATHER])
    assert fake_server.last(model.model)["stream_options"] == {"include_usage": True}
    kinds = [e.kind for e in events]
    assert kinds[0] == "reasoning"
    assert (
        kinds.index("tool_call_start")
        < kinds.index("tool_call_args")
        < kinds.index("tool_call_end")
    )
    args = "".join(e.delta for e in events if isinstance(e, ToolCallArgsDelta))
    assert args == ARGS
    assert sum(isinstance(e, ToolCallArgsDelta) for e in events) > 1  # really incremental
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.id, s.name) for s in starts] == [(0, "call_abc123", "get_weather")]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [e.call for e in ends] == [CALL]
    assert "".join(e.content for e in events if isinstance(e, ReasoningDelta)) == REASONING
    assert streamed == model.request_sync(ASK, [WEATHER])
    _, text = collect(model, AFTER_TOOL, tools=[WEATHER])
    assert text.message.content == ANSWER
    assert text.usage.input_tokens == 12
    model.close()


def test_async_request_and_stream(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server)

    async def main() -> tuple[ModelResponse, list[ModelStreamEvent]]:
        r = await model.request(AFTER_TOOL, [WEATHER])
        events = [e async for e in model.request_stream(AFTER_TOOL, [WEATHER])]
        await model.aclose()
        return r, events

    r, events = asyncio.run(main())
    texts = [e.content for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1
    assert "".join(texts) == ANSWER == r.message.content
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.response == r


def test_zhipu_dialect(fake_server: FakeOpenAIServer) -> None:
    model = OpenAICompatibleModel(
        "zhipu:glm-4.5",
        provider="zhipu",
        base_url=fake_server.base_url + "/api/paas/v4",
        api_key="zk-secret",
    )
    events, r = collect(model, ASK, tools=[WEATHER], settings=ModelSettings(enable_thinking=False))
    body = fake_server.last("zhipu:glm-4.5")
    assert body["thinking"] == {"type": "disabled"}
    assert "chat_template_kwargs" not in body
    assert "stream_options" not in body
    assert fake_server.headers[-1]["authorization"] == "Bearer zk-secret"
    assert r.message.tool_calls == (CALL,)
    assert r.usage.output_tokens == 7  # from the last chunk, without stream_options
    assert [e.delta for e in events if isinstance(e, ToolCallArgsDelta)] == [ARGS]
    with pytest.raises(UserError, match="top_k"):
        model.request_sync(ASK, settings=ModelSettings(top_k=3))
    with pytest.raises(UserError, match="no /completions"):
        OpenAICompatibleModel("glm-4.5", provider="zhipu", mode="completions")
    model.close()


def test_api_key_from_env_never_shown(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "sk-very-secret")
    model = model_for(fake_server, "400")
    assert "sk-very-secret" not in repr(model) + str(model) + repr(vars(model))
    with pytest.raises(ModelHTTPError) as info:
        model.request_sync(ASK)
    assert fake_server.headers[-1]["authorization"] == "Bearer sk-very-secret"
    assert "sk-very-secret" not in str(info.value)
    assert info.value.status_code == 400
    assert "tools: bad schema" in info.value.body
    assert fake_server.counts[model.model] == 1  # a 4xx is not retried
    model.close()


@pytest.mark.parametrize("stream", [False, True])
def test_429_with_retry_after_and_500_are_retried(
    fake_server: FakeOpenAIServer, stream: bool
) -> None:
    for scenario in ("429x2", "500x2"):
        model = model_for(fake_server, scenario, max_retries=2)
        r = collect(model, AFTER_TOOL)[1] if stream else model.request_sync(AFTER_TOOL)
        assert r.message.content == ANSWER
        assert fake_server.counts[model.model] == 3
        model.close()


def test_retries_give_up_with_status_and_body(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server, "429x5", max_retries=1)
    with pytest.raises(ModelHTTPError) as info:
        model.request_sync(ASK)
    assert info.value.status_code == 429
    assert "rate limited" in info.value.body
    assert fake_server.counts[model.model] == 2
    model.close()


def test_dropped_stream_before_output_is_retried(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server, "dropx1")
    _, r = collect(model, AFTER_TOOL)
    assert r.message.content == ANSWER
    assert fake_server.counts[model.model] == 2
    model.close()


@pytest.mark.parametrize("scenario", ["dropmid", "nodone"])
def test_dropped_stream_after_output_is_an_error(
    fake_server: FakeOpenAIServer, scenario: str
) -> None:
    model = model_for(fake_server, scenario)
    seen: list[ModelStreamEvent] = []
    with pytest.raises(ModelError, match="mid-stream") as info:
        seen.extend(model.stream_sync(AFTER_TOOL))
    assert not isinstance(info.value, ModelHTTPError)
    assert any(isinstance(e, TextDelta) for e in seen)
    assert not any(isinstance(e, ResponseDone) for e in seen)
    assert fake_server.counts[model.model] == 1
    model.close()


def test_error_object_mid_stream(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server, "streamerror")
    with pytest.raises(ModelError, match="engine died"):
        list(model.stream_sync(AFTER_TOOL))
    model.close()


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_json_is_a_model_error(fake_server: FakeOpenAIServer, stream: bool) -> None:
    model = model_for(fake_server, "badjson")
    with pytest.raises(ModelError, match="malformed JSON"):
        collect(model, ASK) if stream else model.request_sync(ASK)
    model.close()


def test_unreachable_server_and_timeout(fake_server: FakeOpenAIServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    dead = OpenAICompatibleModel(
        "m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01
    )
    with pytest.raises(ModelError, match=r"after 2 attempt\(s\)"):
        dead.request_sync(ASK)
    dead.close()
    slow = model_for(fake_server, "slow", timeout=0.3)
    with pytest.raises(ModelError, match="timed out"):
        slow.request_sync(ASK)
    assert fake_server.counts[slow.model] == 1  # a slow server is not hammered
    slow.close()


def test_bad_tool_choice_names_the_tools(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server)
    with pytest.raises(UserError, match="get_weather"):
        model.request_sync(ASK, [WEATHER], ModelSettings(tool_choice="get_wether"))


def test_official_openai_client_agrees(fake_server: FakeOpenAIServer) -> None:
    """The fake server's shapes pass the official client; both clients read the same turn."""
    ours = model_for(fake_server)
    client = openai.OpenAI(base_url=fake_server.base_url + "/v1", api_key="k", max_retries=0)
    msgs: Any = [{"role": "user", "content": "Weather in Paris?"}]
    tools: Any = [WEATHER.to_openai()]
    full = client.chat.completions.create(model=ours.model, messages=msgs, tools=tools)
    msg = full.choices[0].message
    assert msg.tool_calls is not None
    fn = msg.tool_calls[0].function  # type: ignore[union-attr]
    mine = ours.request_sync(ASK, [WEATHER])
    assert (fn.name, json.loads(fn.arguments)) == (CALL.name, CALL.args_dict())
    assert (msg.model_extra or {}).get("reasoning_content") == mine.message.reasoning
    assert full.usage is not None
    assert full.usage.prompt_tokens == mine.usage.input_tokens
    stream = client.chat.completions.create(
        model=ours.model,
        messages=msgs,
        tools=tools,
        stream=True,
        stream_options={"include_usage": True},
    )
    args, names, usage = [], [], None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                if tc.function and tc.function.arguments:
                    args.append(tc.function.arguments)
    assert names == ["get_weather"]
    assert "".join(args) == collect(ours, ASK, tools=[WEATHER])[1].message.tool_calls[0].arguments
    assert usage is not None
    assert usage.completion_tokens == mine.usage.output_tokens
    client.close()
    ours.close()


def test_one_model_across_event_loops_closes_each_pool(fake_server: FakeOpenAIServer) -> None:
    """Each asyncio.run() gets its own connection pool, closed when that loop shuts down."""
    model = model_for(fake_server)

    async def turn() -> list[ModelStreamEvent]:
        await model.request(AFTER_TOOL)
        return [e async for e in model.request_stream(AFTER_TOOL)]

    clients = []
    for _ in range(3):
        assert isinstance(asyncio.run(turn())[-1], ResponseDone)
        clients.append(model._aclient)
    assert len({id(c) for c in clients}) == 3
    assert all(c is not None and c.is_closed for c in clients)
    assert fake_server.counts[model.model] == 6

    async def reuse() -> bool:
        await model.request(AFTER_TOOL)
        first = model._aclient
        await model.request(AFTER_TOOL)
        same = model._aclient is first
        await model.aclose()
        return same and first is not None and first.is_closed

    assert asyncio.run(reuse())  # one pool per loop, reused within it; aclose() closes it
