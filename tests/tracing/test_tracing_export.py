"""Spans of the HTTP server and the support bot, agent.yaml's `tracing:` section, and the OTLP/HTTP
export to a real receiver on 127.0.0.1 (once from the section, once from `OTEL_*` alone)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tracing_harness import ancestors, local_server, one, tree

from glm_agent import Agent, AgentInfo, FunctionModel, Message
from glm_agent.exceptions import ConfigError

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def test_http_request_span_continues_the_incoming_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    from fastapi.testclient import TestClient

    from glm_agent.serving import create_app

    def answer(messages: list[Message], info: AgentInfo) -> str:
        return "hello"

    app = create_app([Agent(FunctionModel(answer), name="shop")])
    with TestClient(app) as client:
        r = client.post(
            "/v1/chat/completions",
            json={"model": "shop", "messages": [{"role": "user", "content": "hi"}]},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert r.status_code == 200
        assert client.get("/v1/models/nope").status_code == 404
    finished = spans.get_finished_spans()
    servers = [s for s in finished if s.kind == trace.SpanKind.SERVER]
    assert len(servers) == 2  # one per request, however many layers could have made one
    server = one(finished, "POST /v1/chat/completions")
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT_ID
    attrs = dict(server.attributes or {})
    assert attrs["http.route"] == "/v1/chat/completions"
    assert attrs["http.response.status_code"] == 200
    run = one(finished, "invoke_agent shop")
    assert server.context.span_id in ancestors(run, finished)
    missing = one(finished, "GET /v1/models/{model_id}")
    assert dict(missing.attributes or {})["http.response.status_code"] == 404
    assert f"{missing.context.trace_id:032x}" != TRACE_ID  # no traceparent: a new trace


def test_trace_requests_middleware_makes_the_server_span_itself(
    spans: InMemorySpanExporter,
) -> None:
    """Where no HTTP instrumentation traces the app (older FastAPI, plain Starlette), the
    middleware the server installs makes the SERVER span and continues `traceparent`."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from glm_agent import tracing
    from glm_agent.serving._tracing import TraceRequests

    async def item(request: Any) -> PlainTextResponse:
        with tracing.span("work"):
            if request.path_params["id"] == "boom":
                return PlainTextResponse("no", status_code=503)
            return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/items/{id}", item)])
    app.add_middleware(TraceRequests)
    with TestClient(app) as client:
        client.get("/items/7", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        client.get("/items/boom")
    finished = spans.get_finished_spans()
    first, second = (s for s in finished if s.kind == trace.SpanKind.SERVER)
    assert first.name == "GET /items/{id}"
    assert dict(first.attributes or {})["http.route"] == "/items/{id}"
    assert dict(first.attributes or {})["url.path"] == "/items/7"
    assert first.parent is not None and f"{first.parent.span_id:016x}" == PARENT_ID
    work = [s for s in finished if s.name == "work"]
    assert work[0].parent is not None and work[0].parent.span_id == first.context.span_id
    assert second.status.status_code == trace.StatusCode.ERROR
    assert dict(second.attributes or {})["http.response.status_code"] == 503


def test_support_bot_marks_curated_answers_and_handoffs(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    from glm_agent.serving.bot import SupportBot, SupportConfig
    from glm_agent.serving.bot._console import curated_save

    def answer(messages: list[Message], info: AgentInfo) -> str:
        return "I can help with that."

    bot = SupportBot(
        Agent(FunctionModel(answer)), SupportConfig(database=str(tmp_path / "support.db"))
    )
    curated_save(bot, "运费怎么算？", "满 99 元包邮。", ["运费多少"])
    bot.reload_curated()

    async def talk() -> None:
        conv, _, _ = await bot.create_conversation("web", "c-1")
        with trace.get_tracer("test").start_as_current_span("turn 1"):
            await bot.handle(conv.id, "运费怎么算？")
        with trace.get_tracer("test").start_as_current_span("turn 2"):
            await bot.handle(conv.id, "我要转人工")

    asyncio.run(talk())
    bot.close()
    finished = spans.get_finished_spans()
    assert [t[0] for t in tree(finished)] == ["turn 1", "turn 2"]
    curated = dict(one(finished, "curated_answer").attributes or {})
    assert curated["glm_agent.curated_answer.id"] == 1
    assert curated["glm_agent.curated_answer.score"] > 0.72
    handoff = dict(one(finished, "handoff").attributes or {})
    assert handoff["glm_agent.handoff.trigger"] == "customer_request"
    assert handoff["glm_agent.handoff.ticket"] == 1
    conversation = curated["glm_agent.curated_answer.conversation"]
    assert handoff["glm_agent.handoff.conversation"] == conversation
    turn2 = next(t for t in tree(finished) if t[0] == "turn 2")
    assert "handoff" in [child[0] for child in turn2[1]]


def test_support_bot_spans_are_redacted_by_its_redactor(
    spans: InMemorySpanExporter, capture: None, tmp_path: Path
) -> None:
    """With content capture on, a bot's prompts, tool arguments and results reach the spans
    masked by the bot's own `Redactor`, as they reach its stored transcripts."""
    from glm_agent import AssistantMessage, ToolCall, tool
    from glm_agent.messages import ToolMessage, UserMessage
    from glm_agent.serving.bot import SupportBot, SupportConfig

    @tool
    def find_customer(contact: str) -> dict[str, str]:
        """Find a customer.

        Args:
            contact: Their mobile number.
        """
        return {"customer_id": "C1", "phone": contact}

    def model(messages: list[Message], info: AgentInfo) -> Any:
        if isinstance(messages[-1], ToolMessage):
            return "Found you."
        text = next(m.content for m in reversed(messages) if isinstance(m, UserMessage))
        phone = text.rsplit(" ", 1)[-1]
        return AssistantMessage(
            tool_calls=(ToolCall.from_args("find_customer", {"contact": phone}),)
        )

    bot = SupportBot(
        Agent(FunctionModel(model), tools=[find_customer]),
        SupportConfig(database=str(tmp_path / "support.db")),
    )

    async def talk() -> None:
        conv, _, _ = await bot.create_conversation("web", "c-1")
        await bot.handle(conv.id, "my number is 13812345678")

    asyncio.run(talk())
    bot.close()
    finished = spans.get_finished_spans()
    recorded = [dict(s.attributes or {}) for s in finished]
    recorded += [dict(e.attributes or {}) for s in finished for e in s.events]
    text = repr(recorded)
    assert "13812345678" not in text
    assert "138****5678" in text
    call = one(finished, "execute_tool find_customer")
    assert {e.name for e in call.events} == {
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }


def test_tracing_section_errors_name_file_line_and_key(tmp_path: Path) -> None:
    from glm_agent.agent_config import load_agent_config

    (tmp_path / "agent.yaml").write_text("model: test\ntracing:\n  endpointt: http://x\n")
    with pytest.raises(ConfigError) as info:
        load_agent_config(tmp_path / "agent.yaml")
    assert info.value.key == "tracing.endpointt"
    assert info.value.line == 3


TOOLS = '''
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return order_id + " has shipped"
'''


def _run_cli(folder: Path, env: dict[str, str]) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from glm_agent.cli import main; main()",
            "run",
            str(folder / "agent.yaml"),
            "where is A-1?",
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=folder,
    )


def _span_names(received: list[dict[str, Any]]) -> list[str]:
    return sorted(s["name"] for s in received)


def test_otlp_export_from_the_tracing_section(tmp_path: Path) -> None:
    """`glm-agent run` on an agent.yaml with a `tracing:` section: the spans arrive over
    OTLP/HTTP (protobuf) at a receiver on 127.0.0.1, with its service name and headers."""
    (tmp_path / "shop_tools.py").write_text(TOOLS)
    with local_server() as receiver:
        (tmp_path / "agent.yaml").write_text(
            textwrap.dedent(
                f"""\
                name: shop
                model: test
                tools: [shop_tools:lookup]
                memory: none
                tracing:
                  endpoint: {receiver.url}/v1/traces
                  service_name: bamboo-lane
                  headers: {{Authorization: "Bearer ${{TRACE_TOKEN}}"}}
                """
            )
        )
        _run_cli(tmp_path, {"TRACE_TOKEN": "t-123"})
        received = receiver.otlp_spans
        posts = receiver.headers_of("/v1/traces")
    assert _span_names(received) == [
        "chat test",
        "chat test",
        "execute_tool lookup",
        "invoke_agent shop",
    ]
    assert {s["service"] for s in received} == {"bamboo-lane"}
    assert len({s["trace_id"] for s in received}) == 1
    run = next(s for s in received if s["name"] == "invoke_agent shop")
    assert all(s["parent_id"] == run["span_id"] for s in received if s is not run)
    assert posts and all(h["authorization"] == "Bearer t-123" for h in posts)
    assert all(h["content-type"] == "application/x-protobuf" for h in posts)


def test_otlp_export_from_otel_environment_variables_alone(tmp_path: Path) -> None:
    (tmp_path / "shop_tools.py").write_text(TOOLS)
    (tmp_path / "agent.yaml").write_text(
        "name: shop\nmodel: test\ntools: [shop_tools:lookup]\nmemory: none\n"
    )
    with local_server() as receiver:
        _run_cli(
            tmp_path,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "from-env"},
        )
        received = list(receiver.otlp_spans)
        _run_cli(
            tmp_path,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SDK_DISABLED": "true"},
        )
        after_disabled = list(receiver.otlp_spans)
    assert "invoke_agent shop" in _span_names(received)
    assert {s["service"] for s in received} == {"from-env"}
    assert after_disabled == received
