"""Completions mode: glm-agent renders GLM prompts and parses raw GLM text from /v1/completions."""

from __future__ import annotations

import uuid

import openai
import pytest
from models_remote_server import ANSWER, FakeOpenAIServer

from glm_agent.glm import get_format
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelStreamEvent,
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

# (model name on the server, family glm-agent should infer for it)
CASES = [("glm-4-9b-chat", "glm4"), ("GLM-4-9B-0414", "glm4-0414"), ("glm-4.7-flash", "glm47")]


def completions_model(server: FakeOpenAIServer, name: str) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        f"{name}:{uuid.uuid4().hex[:6]}",
        base_url=server.base_url + "/v1",
        provider="vllm",
        mode="completions",
    )


@pytest.mark.parametrize(("name", "family"), CASES)
def test_raw_tool_call_parsed_by_glm_agent(
    fake_server: FakeOpenAIServer, name: str, family: str
) -> None:
    model = OpenAICompatibleModel(
        name, base_url=fake_server.base_url + "/v1", provider="vllm", mode="completions"
    )
    assert model.family == family
    settings = ModelSettings(temperature=0.0, max_tokens=32, stop=["END"], enable_thinking=False)
    r = model.request_sync(ASK, [WEATHER], settings)
    assert [(c.name, c.args_dict()) for c in r.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert r.finish_reason == "tool_calls"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (30, 9)
    body = fake_server.last(name)
    fmt = get_format(family)
    assert body["prompt"] == fmt.render(ASK, [WEATHER], enable_thinking=False)
    assert body["stop"][-1] == "END"
    assert set(fmt.facts.stop_strings) <= set(body["stop"])
    assert body["stop_token_ids"] == list(fmt.facts.stop_token_ids)
    assert body["skip_special_tokens"] is False

    events = list(model.stream_sync(ASK, [WEATHER], settings))
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert [c.args_dict() for c in done.response.message.tool_calls] == [{"city": "Paris"}]
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [s.name for s in starts] == ["get_weather"]
    assert [e.call for e in ends] == list(done.response.message.tool_calls)
    args = "".join(e.delta for e in events if isinstance(e, ToolCallArgsDelta))
    assert args == done.response.message.tool_calls[0].arguments
    assert done.response.usage.output_tokens == 9

    call = done.response.message.tool_calls[0]
    after: list[Message] = [
        *ASK,
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(content='{"temp": 21}', tool_call_id=call.id, name="get_weather"),
    ]
    answer = model.request_sync(after, [WEATHER], settings)
    assert answer.message.content == ANSWER
    assert answer.finish_reason == "stop"
    assert '{"temp": 21}' in fake_server.last(name)["prompt"]
    streamed: list[ModelStreamEvent] = list(model.stream_sync(after, [WEATHER], settings))
    assert "".join(e.content for e in streamed if isinstance(e, TextDelta)) == ANSWER
    model.close()


def test_tool_choice_none_hides_the_tools(fake_server: FakeOpenAIServer) -> None:
    model = completions_model(fake_server, "glm-4-9b-chat")
    r = model.request_sync(ASK, [WEATHER], ModelSettings(tool_choice="none"))
    assert r.message.tool_calls == ()
    assert "get_weather" not in fake_server.last(model.model)["prompt"]
    model.close()


def test_official_client_reads_the_completions_endpoint(fake_server: FakeOpenAIServer) -> None:
    model = completions_model(fake_server, "glm-4-9b-chat")
    client = openai.OpenAI(base_url=fake_server.base_url + "/v1", api_key="k", max_retries=0)
    prompt = get_format("glm4").render(ASK, [WEATHER])
    full = client.completions.create(model=model.model, prompt=prompt, max_tokens=16)
    pieces = [
        c.choices[0].text
        for c in client.completions.create(
            model=model.model, prompt=prompt, stream=True, stream_options={"include_usage": True}
        )
        if c.choices
    ]
    mine = model.request_sync(ASK, [WEATHER])
    assert "".join(pieces) == full.choices[0].text
    parsed = get_format("glm4").parse(full.choices[0].text, [WEATHER])
    assert [c.args_dict() for c in parsed.tool_calls] == [
        c.args_dict() for c in mine.message.tool_calls
    ]
    assert isinstance(mine.message.tool_calls[0], ToolCall)
    client.close()
    model.close()


def test_glm53_template_switches_reach_the_prompt(fake_server: FakeOpenAIServer) -> None:
    """chat_template_kwargs (reasoning effort, preserved thinking) are rendered by glm-agent in
    completions mode, as a chat server's template would read them; none is sent on."""
    model = OpenAICompatibleModel(
        "glm-5.3-flash", base_url=fake_server.base_url + "/v1", provider="vllm", mode="completions"
    )
    assert model.family == "glm53"
    kwargs = {"reasoning_effort": "high", "clear_thinking": True}
    settings = ModelSettings(extra={"chat_template_kwargs": kwargs, "priority": 1})
    r = model.request_sync(ASK, [WEATHER], settings)
    body = fake_server.last("glm-5.3-flash")
    fmt = get_format("glm53")
    assert body["prompt"] == fmt.render(ASK, [WEATHER], **kwargs)
    assert body["prompt"].startswith("[gMASK]<sop><|system|>Reasoning Effort: High")
    assert body["prompt"].endswith("<|assistant|><think>")
    assert "chat_template_kwargs" not in body and body["priority"] == 1
    # The raw text re-opens <think> after a prompt that opened it: not kept in the reasoning.
    assert r.message.reasoning == "Weather needs the tool."
    assert [(c.name, c.args_dict()) for c in r.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    model.close()
