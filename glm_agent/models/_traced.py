"""A model request under a `chat` span (OpenTelemetry GenAI semantic conventions).

The planner calls models through `request` and `request_stream` here. With tracing off they are
the model's own methods; with it on, the span is current while the backend works, so the
OpenAI-compatible backend sends it on as `traceparent`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from glm_agent import tracing
from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    ToolDefinition,
    loggable_content,
)
from glm_agent.models.base import ChatModel
from glm_agent.settings import ModelSettings

__all__ = ["request", "request_stream"]


def _model_id(model: ChatModel) -> str:
    return str(getattr(model, "model", None) or model.name)


def _attributes(
    model: ChatModel, tools: Sequence[ToolDefinition], settings: ModelSettings, stream: bool
) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": str(getattr(model, "provider", None) or type(model).__name__),
        "gen_ai.request.model": _model_id(model),
        "gen_ai.request.temperature": settings.temperature,
        "gen_ai.request.top_p": settings.top_p,
        "gen_ai.request.max_tokens": settings.max_tokens,
        "gen_ai.request.seed": settings.seed,
        "gen_ai.request.stream": stream,
        "glm_agent.request.tools": len(tools),
    }


def _message_json(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": loggable_content(m.content)}
    if isinstance(m, AssistantMessage) and m.tool_calls:
        out["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    return out


def _start(span: tracing.SpanLike, messages: Sequence[Message]) -> None:
    if tracing.capture_content() and span.is_recording():
        span.set_attribute(
            "gen_ai.input.messages", tracing.content_json([_message_json(m) for m in messages])
        )


def _record(span: tracing.SpanLike, response: ModelResponse) -> None:
    span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
    if response.model_name:
        span.set_attribute("gen_ai.response.model", response.model_name)
    span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
    calls = [c.name for c in response.message.tool_calls]
    if calls:
        span.set_attribute("glm_agent.response.tool_calls", calls)
    if tracing.capture_content():
        span.set_attribute(
            "gen_ai.output.messages", tracing.content_json([_message_json(response.message)])
        )


async def request(
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition],
    settings: ModelSettings,
) -> ModelResponse:
    """`model.request`, under a `chat` span when tracing is on."""
    if not tracing.enabled():
        return await model.request(messages, tools, settings)
    attributes = _attributes(model, tools, settings, stream=False)
    with tracing.span(f"chat {_model_id(model)}", attributes, kind="client") as span:
        _start(span, messages)
        response = await model.request(messages, tools, settings)
        _record(span, response)
        return response


def request_stream(
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition],
    settings: ModelSettings,
) -> AsyncIterator[ModelStreamEvent]:
    """`model.request_stream`, under a `chat` span when tracing is on."""
    if not tracing.enabled():
        return model.request_stream(messages, tools, settings)
    return _traced_stream(model, messages, tools, settings)


async def _traced_stream(
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition],
    settings: ModelSettings,
) -> AsyncIterator[ModelStreamEvent]:
    attributes = _attributes(model, tools, settings, stream=True)
    span = tracing.start_span(f"chat {_model_id(model)}", attributes, kind="client")
    _start(span, messages)
    start, first = time.perf_counter(), True
    events = tracing.iterate_in(
        tracing.context_with(span), model.request_stream(messages, tools, settings)
    )
    try:
        async for event in events:
            if first:
                first = False
                waited = time.perf_counter() - start
                span.set_attribute("gen_ai.response.time_to_first_chunk", waited)
            if isinstance(event, ResponseDone):
                _record(span, event.response)
            yield event
    except GeneratorExit:
        span.set_attribute("glm_agent.stream.closed_early", True)
        raise
    except BaseException as e:
        tracing.fail(span, e)
        raise
    finally:
        await events.aclose()
        span.end()
