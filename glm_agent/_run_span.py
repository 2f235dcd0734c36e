"""The `invoke_agent` span around one run (`Agent.iter`), current while the run works.

The run is an async generator its consumer may step from several tasks (the sync bridge does),
so the span is never attached across a `yield`: `tracing.iterate_in` makes it current inside each
step only. Everything the run does in a step (memory load and append, retrieval, model requests,
tool calls) opens its spans under it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from glm_agent import tracing
from glm_agent.messages import Message, UserMessage
from glm_agent.results import AgentStreamEvent, RunDone, RunResult

__all__ = ["traced_run"]


def text_redactor(redact: Callable[[Message], Message] | None) -> Callable[[str], str] | None:
    """A redactor of plain text made from a memory's message redactor (None: no redaction)."""
    if redact is None:
        return None

    def redact_text(text: str) -> str:
        redacted = redact(UserMessage(content=text))
        return redacted.text if isinstance(redacted, UserMessage) else ""

    return redact_text


def _record(span: Any, result: RunResult[Any], redact: Callable[[str], str] | None) -> None:
    span.set_attribute("glm_agent.run.status", result.status)
    span.set_attribute("glm_agent.run.steps", len(result.steps))
    span.set_attribute("glm_agent.run.tool_calls", len(result.tool_calls))
    span.set_attribute("gen_ai.usage.input_tokens", result.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", result.usage.output_tokens)
    span.set_attribute("glm_agent.run.requests", result.usage.requests)
    if tracing.capture_content() and isinstance(result.output, str):
        # Outside the run's context here: its redactor is applied by hand.
        output = [{"role": "assistant", "content": result.output}]
        text = json.dumps(output, ensure_ascii=False)
        span.set_attribute("gen_ai.output.messages", redact(text) if redact else text)


async def traced_run(
    events: AsyncGenerator[AgentStreamEvent, None],
    *,
    agent_name: str,
    model_name: str,
    session_id: str | None,
    tenant: str | None,
    metadata: dict[str, Any] | None,
    stream: bool,
    redact: Callable[[str], str] | None,
) -> AsyncGenerator[AgentStreamEvent, None]:
    """`events` (a run) under an `invoke_agent` span that records its outcome and usage."""
    metadata = metadata or {}
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent_name,
        "gen_ai.request.model": model_name,
        "gen_ai.conversation.id": session_id,
        "glm_agent.tenant": tenant,
        "glm_agent.channel": metadata.get("channel"),
        "glm_agent.run.stream": stream,
    }
    span = tracing.start_span(f"invoke_agent {agent_name}", attributes)
    steps = tracing.iterate_in(tracing.context_with(span, redact), events)
    done = False
    try:
        async for event in steps:
            if isinstance(event, RunDone):
                _record(span, event.result, redact)
                done = True
            yield event
    except GeneratorExit:
        # The consumer stopped the run between events: not a failure of the run.
        if not done:
            span.set_attribute("glm_agent.run.status", "stopped")
        raise
    except BaseException as e:
        tracing.fail(span, e)
        raise
    finally:
        await steps.aclose()
        span.end()
