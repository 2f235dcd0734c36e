"""The official openai client and LangChain's ChatOpenAI against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_models_lists_agents_and_plain_models(server: str) -> None:
    c = client(server)
    assert [m.id for m in c.models.list()] == ["support", "plain"]
    assert c.models.retrieve("plain").id == "plain"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("nope")


def test_agent_runs_its_tool_within_the_request(server: str) -> None:
    r = client(server).chat.completions.create(
        model="support", messages=[{"role": "user", "content": "Where is order A-1043?"}]
    )
    assert r.choices[0].message.content == "Order A-1043 is processing."
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.tool_calls is None
    assert r.usage is not None and r.usage.total_tokens > 0


def test_agent_session_from_header_or_user_field(server: str) -> None:
    c = client(server)
    c.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "my name is Ada"}],
        extra_headers={"X-Session-Id": "s-header"},
    )
    r = c.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "who am I?"}],
        extra_headers={"X-Session-Id": "s-header"},
    )
    assert r.choices[0].message.content == "You are Ada (turn 2)."
    c.chat.completions.create(
        model="support", messages=[{"role": "user", "content": "my name is Bo"}], user="u-1"
    )
    r = c.chat.completions.create(
        model="support", messages=[{"role": "user", "content": "who am I?"}], user="u-1"
    )
    assert r.choices[0].message.content == "You are Bo (turn 2)."


def test_without_session_the_client_history_is_used(server: str) -> None:
    r = client(server).chat.completions.create(
        model="support",
        messages=[
            {"role": "user", "content": "my name is Cy"},
            {"role": "assistant", "content": "Nice to meet you, Cy."},
            {"role": "user", "content": "who am I?"},
        ],
    )
    assert r.choices[0].message.content == "You are Cy (turn 2)."


def test_agent_stream_with_usage_chunk(server: str) -> None:
    chunks = list(
        client(server).chat.completions.create(
            model="support",
            messages=[{"role": "user", "content": "Where is A-1042?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Order A-1042 is shipped."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


def test_plain_model_returns_tool_calls_to_the_client(server: str) -> None:
    c = client(server)
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather?"}]
    r = c.chat.completions.create(model="plain", messages=messages, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    r = c.chat.completions.create(model="plain", messages=messages, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert r.choices[0].message.content == "The tool said: sunny"
    r = c.chat.completions.create(
        model="plain",
        messages=messages[:1],
        tools=[WEATHER],
        tool_choice="none",  # type: ignore[arg-type,list-item]
    )
    assert r.choices[0].message.content == "echo: Weather?"


def test_plain_model_streams_tool_call_deltas(server: str) -> None:
    stream = client(server).chat.completions.create(
        model="plain",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    name, args, ids, finish = "", "", set(), None
    for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or []:
            assert tc.index == 0
            name += tc.function.name or "" if tc.function else ""
            args += tc.function.arguments or "" if tc.function else ""
            if tc.id:
                ids.add(tc.id)
        finish = chunk.choices[0].finish_reason or finish
    assert (name, json.loads(args), len(ids), finish) == (
        "weather",
        {"city": "Paris"},
        1,
        "tool_calls",
    )


def test_async_client_and_errors(server: str) -> None:
    async def go() -> None:
        c = openai.AsyncOpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)
        r = await c.chat.completions.create(
            model="support", messages=[{"role": "user", "content": "hello"}]
        )
        assert r.choices[0].message.content == "You are unknown (turn 1)."
        stream = await c.chat.completions.create(
            model="support", messages=[{"role": "user", "content": "A-1042"}], stream=True
        )
        parts = [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
        assert "".join(parts) == "Order A-1042 is shipped."
        with pytest.raises(openai.NotFoundError) as err:
            await c.chat.completions.create(
                model="missing", messages=[{"role": "user", "content": "x"}]
            )
        assert err.value.body["code"] == "model_not_found"  # type: ignore[index]
        assert "support" in err.value.body["message"]  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as bad:
            await c.chat.completions.create(model="support", messages=[])
        assert bad.value.body["param"] == "messages"  # type: ignore[index]
        await c.close()

    asyncio.run(go())


def test_embeddings_without_knowledge_base(server: str) -> None:
    c = client(server)
    with pytest.raises(openai.BadRequestError) as err:
        c.embeddings.create(model="support", input="hello")
    assert err.value.body["code"] == "no_knowledge_base"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        c.embeddings.create(model="nobody", input="hello")


def test_langchain_chat_openai(server: str) -> None:
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="support", base_url=server + "/v1", api_key="unused", max_retries=0)  # type: ignore[arg-type]
    assert llm.invoke([HumanMessage("Where is A-1042?")]).content == "Order A-1042 is shipped."
    text = "".join(str(c.content) for c in llm.stream("Where is A-1043?"))
    assert text == "Order A-1043 is processing."
    plain = ChatOpenAI(model="plain", base_url=server + "/v1", api_key="unused", max_retries=0)  # type: ignore[arg-type]
    msg = plain.bind_tools([WEATHER]).invoke("Weather?")
    assert msg.tool_calls[0]["name"] == "weather"  # type: ignore[attr-defined]
    assert msg.tool_calls[0]["args"] == {"city": "Paris"}  # type: ignore[attr-defined]


def test_client_tool_settings_do_not_reach_an_agent(server: str) -> None:
    r = client(server).chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "Where is A-1042?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
    )
    # The agent still used its own order_status tool.
    assert r.choices[0].message.content == "Order A-1042 is shipped."
