"""The agent API (runs, sessions), concurrency without cross-talk, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
from serving_harness import live_server, make_agent

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.messages import Message
from glm_agent.models import AgentInfo, FunctionModel
from glm_agent.serving import ServedAgent, create_app


def _events(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for block in text.strip().split("\n\n"):
        kind, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data:
            out.append((kind, json.loads(data) if data != "[DONE]" else data))
    return out


def test_run_returns_transcript_and_usage(server: str) -> None:
    r = httpx.post(
        server + "/v1/agents/support/runs",
        json={"input": "Where is A-1042?", "session_id": "r1"},
    )
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["output"] == "Order A-1042 is shipped."
    assert run["session_id"] == "r1" and run["status"] == "completed"
    assert [m["role"] for m in run["new_messages"]] == ["user", "assistant", "tool", "assistant"]
    assert run["tool_calls"][0]["name"] == "order_status"
    assert run["tool_calls"][0]["status"] == "ok"
    assert run["usage"]["requests"] == 2 and run["steps"] == 2
    session = httpx.get(server + "/v1/sessions/r1").json()
    assert session["messages"][-1]["content"] == "Order A-1042 is shipped."
    assert httpx.delete(server + "/v1/sessions/r1").json()["deleted"] is True
    assert httpx.get(server + "/v1/sessions/r1").status_code == 404
    missing = httpx.post(server + "/v1/agents/nobody/runs", json={"input": "x"})
    assert missing.status_code == 404 and "support" in missing.json()["error"]["message"]


def test_run_stream_has_typed_events(server: str) -> None:
    r = httpx.post(
        server + "/v1/agents/support/runs", json={"input": "Where is A-1043?", "stream": True}
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    kinds = [k for k, _ in events]
    assert kinds[0] == "step_start" and kinds[-1] == "run_done"
    assert {"tool_call_start", "tool_call_end", "tool_result", "text"} <= set(kinds)
    result = events[-1][1]
    assert isinstance(result, dict) and result["output"] == "Order A-1043 is processing."
    tool = next(d for k, d in events if k == "tool_result")
    assert isinstance(tool, dict) and json.loads(tool["content"])["status"] == "processing"


def test_fifty_concurrent_sessions_do_not_cross_talk(server: str) -> None:
    async def one(c: openai.AsyncOpenAI, i: int) -> str:
        h = {"X-Session-Id": f"c-{i}"}
        await c.chat.completions.create(
            model="support",
            messages=[{"role": "user", "content": f"my name is N{i}"}],
            extra_headers=h,
        )
        r = await c.chat.completions.create(
            model="support", messages=[{"role": "user", "content": "who?"}], extra_headers=h
        )
        return r.choices[0].message.content or ""

    async def go() -> list[str]:
        c = openai.AsyncOpenAI(base_url=server + "/v1", api_key="x", max_retries=0)
        try:
            return await asyncio.gather(*(one(c, i) for i in range(50)))
        finally:
            await c.close()

    assert asyncio.run(go()) == [f"You are N{i} (turn 2)." for i in range(50)]


def test_shutdown_ends_open_streams_cleanly(tmp_path: Path) -> None:
    started = threading.Event()

    async def endless(messages: list[Message], info: AgentInfo) -> AsyncIterator[str]:
        yield "working"
        started.set()
        await asyncio.sleep(60)
        yield "never"

    agent: Agent[str] = Agent(FunctionModel(stream_function=endless), name="slow")
    app = create_app([agent, make_agent(tmp_path)])
    received: list[str] = []

    def consume(url: str) -> None:
        body = {"model": "slow", "messages": [{"role": "user", "content": "go"}], "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
            received.extend(r.iter_lines())

    with live_server(app) as url:
        reader = threading.Thread(target=consume, args=(url,))
        reader.start()
        assert started.wait(10)
        assert httpx.get(url + "/readyz").status_code == 200
        app.state.glm.request_shutdown()
        reader.join(10)
        assert not reader.is_alive()
        assert httpx.get(url + "/readyz").status_code == 503
    data = [line[6:] for line in received if line.startswith("data: ")]
    assert json.loads(data[1])["choices"][0]["delta"]["content"] == "working"
    assert json.loads(data[-2])["error"]["code"] == "shutting_down"
    assert data[-1] == "[DONE]"


def test_run_timeout_is_a_504_in_openai_shape(tmp_path: Path) -> None:
    async def slow(messages: list[Message], info: AgentInfo) -> str:
        await asyncio.sleep(5)
        return "late"

    agent: Agent[str] = Agent(FunctionModel(slow), name="slow")
    app = create_app([ServedAgent(agent, run_timeout=0.2)])

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
            return await c.post("/v1/chat/completions", json=body)

    r = asyncio.run(go())
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "timeout"


def test_deferred_run_resumes_with_approvals(tmp_path: Path) -> None:
    from glm_agent import tool
    from glm_agent.messages import AssistantMessage, ToolCall, ToolMessage

    @tool(requires_approval=True)
    def refund(order_id: str) -> str:
        """Refund an order.

        Args:
            order_id: The order.
        """
        return f"refunded {order_id}"

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if isinstance(messages[-1], ToolMessage):
            return "done: " + messages[-1].content
        return AssistantMessage(tool_calls=(ToolCall.from_args("refund", {"order_id": "A-9"}),))

    agent: Agent[str] = Agent(
        FunctionModel(turn),
        tools=[refund],
        name="refunds",
        memory=SQLiteStore(str(tmp_path / "r.db")),
    )
    app = create_app([agent])
    with live_server(app) as url:
        runs = url + "/v1/agents/refunds/runs"
        first = httpx.post(runs, json={"input": "refund A-9", "session_id": "q"}).json()
        assert first["status"] == "deferred"
        call = first["deferred_calls"][0]
        assert json.loads(call["function"]["arguments"]) == {"order_id": "A-9"}
        bad = httpx.post(runs, json={"approvals": {call["id"]: {"approved": True}}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"
        body = {"session_id": "q", "approvals": {call["id"]: {"approved": True}}}
        done = httpx.post(runs, json=body).json()
        assert done["status"] == "completed" and done["output"] == "done: refunded A-9"
