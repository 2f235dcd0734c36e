"""The span tree of a run and its attributes, read back from the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from tracing_harness import local_server, one, tree

from glm_agent import (
    Agent,
    AgentInfo,
    AssistantMessage,
    FunctionModel,
    Message,
    ToolCall,
    tool,
    tracing,
)
from glm_agent.memory import ContextWindow, ConversationMemory, SQLiteStore
from glm_agent.messages import ToolMessage
from glm_agent.results import RunDone, StepStart


@tool(redact=["contact"])
def lookup_customer(contact: str) -> dict[str, Any]:
    """Find a customer by phone number.

    Args:
        contact: The customer's mobile number.
    """
    return {"customer_id": "c-7", "phone": contact}


@tool
def broken(order_id: str) -> str:
    """Always fails.

    Args:
        order_id: An order number.
    """
    raise RuntimeError("the order service is down")


def one_tool_then_answer(name: str, args: dict[str, Any]) -> Any:
    def reply(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if not isinstance(messages[-1], ToolMessage):
            return AssistantMessage(tool_calls=(ToolCall.from_args(name, args),))
        return f"done: {messages[-1].content}"

    return reply


def ids(span: Any) -> list[str]:
    """[trace id, span id] of a span, as `traceparent` writes them."""
    return [f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"]


def mask_digits(m: Message) -> Message:
    """A redactor like the support bot's: masks every run of 6+ digits."""
    content = re.sub(r"\d{6,}", "[NUMBER]", m.content or "") or None
    return m.model_copy(update={"content": content})


def test_run_span_tree_and_genai_attributes(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    agent: Agent[str] = Agent(
        FunctionModel(one_tool_then_answer("lookup_customer", {"contact": "13812345678"})),
        tools=[lookup_customer],
        memory=SQLiteStore(str(tmp_path / "s.db")),
        name="shop",
    )
    result = agent.run("who am I? 13812345678", session_id="c-1", tenant="acme")
    assert result.output.startswith("done:")
    finished = spans.get_finished_spans()
    assert tree(finished) == [
        [
            "invoke_agent shop",
            [
                ["memory load", []],
                ["chat function", []],
                ["execute_tool lookup_customer", []],
                ["chat function", []],
                ["memory append", []],
            ],
        ]
    ]
    run = one(finished, "invoke_agent shop")
    assert run.kind == trace.SpanKind.INTERNAL
    attrs = dict(run.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "shop"
    assert attrs["gen_ai.conversation.id"] == "c-1"
    assert attrs["glm_agent.tenant"] == "acme"
    assert attrs["glm_agent.run.status"] == "completed"
    assert attrs["glm_agent.run.steps"] == 2
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.input_tokens > 0
    assert attrs["gen_ai.usage.output_tokens"] == result.usage.output_tokens > 0

    first, second = (s for s in finished if s.name == "chat function")
    assert first.kind == trace.SpanKind.CLIENT
    a = dict(first.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "function"
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["glm_agent.response.tool_calls"] == ("lookup_customer",)
    assert a["gen_ai.usage.input_tokens"] == result.steps[0].response.usage.input_tokens
    assert dict(second.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)

    call = one(finished, "execute_tool lookup_customer")
    c = dict(call.attributes or {})
    assert c["gen_ai.tool.name"] == "lookup_customer"
    assert c["gen_ai.tool.call.id"] == result.tool_calls[0].call.id
    assert c["glm_agent.tool.status"] == "ok"
    assert call.status.status_code == StatusCode.UNSET
    # Content capture is off by default: no arguments, results or prompts on any span.
    assert not call.events
    assert all(
        not k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.retrieval.query"))
        for s in finished
        for k in (s.attributes or {})
    )
    load, append = one(finished, "memory load"), one(finished, "memory append")
    assert dict(load.attributes or {})["glm_agent.memory.version"] == 0
    assert dict(append.attributes or {})["glm_agent.memory.appended"] == len(result.new_messages)
    assert dict(append.attributes or {})["glm_agent.memory.version"] == 1
    assert len({s.context.trace_id for s in finished if s.context}) == 1


def test_captured_content_is_redacted_like_transcripts(
    spans: InMemorySpanExporter, capture: None, tmp_path: Path
) -> None:
    memory = ConversationMemory(
        SQLiteStore(str(tmp_path / "s.db")), ContextWindow(8000, 500), redact=mask_digits
    )
    agent: Agent[str] = Agent(
        FunctionModel(one_tool_then_answer("lookup_customer", {"contact": "13812345678"})),
        tools=[lookup_customer],
        memory=memory,
        name="shop",
    )
    agent.run("my number is 13812345678", session_id="c-2")
    finished = spans.get_finished_spans()
    call = one(finished, "execute_tool lookup_customer")
    events = {e.name: dict(e.attributes or {}) for e in call.events}
    # The policy's redact field, then the run's redactor.
    assert json.loads(events["gen_ai.tool.call.arguments"]["gen_ai.tool.call.arguments"]) == {
        "contact": "***"
    }
    result = events["gen_ai.tool.call.result"]["gen_ai.tool.call.result"]
    assert "[NUMBER]" in result and "13812345678" not in result
    chats = [s for s in finished if s.name == "chat function"]
    prompt = json.loads(dict(chats[0].attributes or {})["gen_ai.input.messages"])
    assert prompt[-1] == {"role": "user", "content": "my number is [NUMBER]"}
    everything = json.dumps([dict(s.attributes or {}) for s in finished], ensure_ascii=False)
    assert "13812345678" not in everything


def test_tool_failure_marks_the_tool_span_as_an_error(spans: InMemorySpanExporter) -> None:
    agent: Agent[str] = Agent(
        FunctionModel(one_tool_then_answer("broken", {"order_id": "A-1"})), tools=[broken]
    )
    agent.run("go")
    call = one(spans.get_finished_spans(), "execute_tool broken")
    assert call.status.status_code == StatusCode.ERROR
    assert "the order service is down" in (call.status.description or "")
    assert dict(call.attributes or {})["error.type"] == "error"


def test_a_failed_run_records_the_error_on_the_run_span(spans: InMemorySpanExporter) -> None:
    def loops(messages: list[Message], info: AgentInfo) -> AssistantMessage:
        return AssistantMessage(tool_calls=(ToolCall.from_args("broken", {"order_id": "A"}),))

    agent: Agent[str] = Agent(FunctionModel(loops), tools=[broken], max_steps=2, retries=10)
    with pytest.raises(Exception, match="max_steps"):
        agent.run("go")
    run = one(spans.get_finished_spans(), "invoke_agent agent")
    assert run.status.status_code == StatusCode.ERROR
    assert dict(run.attributes or {})["error.type"] == "MaxStepsExceeded"
    assert [e.name for e in run.events] == ["exception"]


def test_stream_through_the_sync_bridge_keeps_one_tree_under_the_callers_span(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """`Agent.stream` steps the run from a new task for every event: each step attaches and
    detaches the run's context by itself, and the caller's span is the run's parent."""
    agent: Agent[str] = Agent(
        FunctionModel(one_tool_then_answer("lookup_customer", {"contact": "1"})),
        tools=[lookup_customer],
        name="shop",
    )
    caplog.set_level(logging.ERROR, logger="opentelemetry.context")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller"):
        events = list(agent.stream("hi"))
        inside = trace.get_current_span()
    assert isinstance(events[-1], RunDone)
    assert inside.name == "caller"  # type: ignore[attr-defined]  # not left on the run's span
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]
    assert tree(spans.get_finished_spans()) == [
        [
            "caller",
            [
                [
                    "invoke_agent shop",
                    [
                        ["chat function", []],
                        ["execute_tool lookup_customer", []],
                        ["chat function", []],
                    ],
                ]
            ],
        ]
    ]
    chat = next(s for s in spans.get_finished_spans() if s.name == "chat function")
    assert dict(chat.attributes or {})["gen_ai.request.stream"] is True
    assert "gen_ai.response.time_to_first_chunk" in dict(chat.attributes or {})


def test_a_run_stopped_between_steps_ends_its_span(spans: InMemorySpanExporter) -> None:
    def loops(messages: list[Message], info: AgentInfo) -> AssistantMessage:
        call = ToolCall.from_args("lookup_customer", {"contact": "1"})
        return AssistantMessage(tool_calls=(call,))

    agent: Agent[str] = Agent(FunctionModel(loops), tools=[lookup_customer], name="shop")

    async def stop_at_step_2() -> None:
        async with agent.iter("go") as run:
            async for event in run:
                if isinstance(event, StepStart) and event.step == 2:
                    break

    asyncio.run(stop_at_step_2())
    run_span = one(spans.get_finished_spans(), "invoke_agent shop")
    assert dict(run_span.attributes or {})["glm_agent.run.status"] == "stopped"
    assert run_span.status.status_code == StatusCode.UNSET


def test_retrieval_span_under_the_run(
    spans: InMemorySpanExporter, capture: None, tmp_path: Path
) -> None:
    from glm_agent.retrieval import KnowledgeBase

    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    kb.add_documents(
        [
            {"id": "returns.md", "text": "Returns are accepted within 7 days of delivery."},
            {"id": "shipping.md", "text": "Shipping is free over 99 yuan."},
        ]
    )

    def answer(messages: list[Message], info: AgentInfo) -> str:
        return "Within 7 days [1]."

    agent: Agent[str] = Agent(FunctionModel(answer), knowledge=kb, knowledge_mode="context")
    agent.run("How many days do I have for returns?")
    finished = spans.get_finished_spans()
    assert tree(finished) == [["invoke_agent agent", [["retrieval kb", []], ["chat function", []]]]]
    r = dict(one(finished, "retrieval kb").attributes or {})
    assert r["gen_ai.operation.name"] == "retrieval"
    assert r["glm_agent.retrieval.k"] == 5 and r["glm_agent.retrieval.hits"] == 2
    assert r["glm_agent.retrieval.sources"][0] == "returns.md"
    scores = r["glm_agent.retrieval.scores"]
    assert len(scores) == 2 and scores[0] >= scores[1]
    assert r["gen_ai.retrieval.query.text"] == "How many days do I have for returns?"
    docs = json.loads(r["gen_ai.retrieval.documents"])
    assert [d["id"] for d in docs] == ["returns.md", "shipping.md"]
    kb.close()


def test_model_requests_and_http_tools_carry_the_trace_on(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    """The OpenAI-compatible backend sends the `chat` span, an HTTP tool its `execute_tool`
    span, as `traceparent` to the servers they call."""
    from glm_agent.models.openai_compat import OpenAICompatibleModel
    from glm_agent.tools import load_registry

    with local_server() as server:
        (tmp_path / "tools.yaml").write_text(
            "version: 1\n"
            f"http: {{allowed_hosts: ['127.0.0.1']}}\n"
            "tools:\n"
            "  - name: lookup_order\n"
            "    description: Look up an order.\n"
            "    parameters:\n"
            "      type: object\n"
            "      properties: {order_id: {type: string}}\n"
            "      required: [order_id]\n"
            f"    http: {{url: '{server.url}/orders/{{order_id}}'}}\n"
        )
        registry = load_registry(tmp_path / "tools.yaml")
        model = OpenAICompatibleModel("glm-4.5", base_url=server.url + "/v1", provider="vllm")
        agent: Agent[str] = Agent(model, tools=registry, name="shop")
        assert agent.run("where is A-1?").output == "Your order A-1 has shipped."
        assert isinstance(list(agent.stream("and now?"))[-1], RunDone)  # the streamed path
        finished = spans.get_finished_spans()
        chats = [s for s in finished if s.name == "chat glm-4.5"]
        tools = [s for s in finished if s.name == "execute_tool lookup_order"]
        assert len(chats) == 4 and len(tools) == 2
        # traceparent: 00-<trace id>-<span id>-<flags>
        sent = [h["traceparent"].split("-")[1:3] for h in server.headers_of("/v1/chat/")]
        assert sorted(sent) == sorted(ids(s) for s in chats)
        to_tool = [h["traceparent"].split("-")[1:3] for h in server.headers_of("/orders/")]
        assert sorted(to_tool) == sorted(ids(s) for s in tools)
        a = dict(chats[0].attributes or {})
        assert a["gen_ai.provider.name"] == "vllm"
        assert a["gen_ai.request.model"] == "glm-4.5"
        assert a["gen_ai.usage.input_tokens"] == 11 and a["gen_ai.usage.output_tokens"] == 7
        assert a["gen_ai.response.model"] == "glm-4.5"
        agent.close()


def test_no_provider_no_spans_and_no_opentelemetry_import(tmp_path: Path) -> None:
    """Without a tracer provider a run creates nothing and never imports opentelemetry."""
    script = (
        "import sys\n"
        "from glm_agent import Agent, tracing\n"
        "from glm_agent.memory import SQLiteStore\n"
        f"agent = Agent('test', memory=SQLiteStore({str(tmp_path / 's.db')!r}))\n"
        "agent.run('hello', session_id='s')\n"
        "assert not tracing.enabled()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_mark_and_span_are_noops_without_a_provider() -> None:
    with tracing.span("nothing", {"a": 1}) as s:
        assert not s.is_recording()
    tracing.mark("handoff", trigger="x")
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {}


def test_mark_records_namespaced_fields(spans: InMemorySpanExporter) -> None:
    with tracing.span("turn"):
        tracing.mark("handoff", trigger="customer_request", ticket=3, reason=None)
    handoff = one(spans.get_finished_spans(), "handoff")
    assert dict(handoff.attributes or {}) == {
        "glm_agent.handoff.trigger": "customer_request",
        "glm_agent.handoff.ticket": 3,
    }
    assert handoff.parent is not None
    assert handoff.parent.span_id == one(spans.get_finished_spans(), "turn").context.span_id


def test_text_redactor_goes_through_the_memory_message_redactor() -> None:
    from glm_agent._run_span import text_redactor

    redact = text_redactor(mask_digits)
    assert redact is not None and redact("call 13812345678") == "call [NUMBER]"
    assert text_redactor(None) is None
