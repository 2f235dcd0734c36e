"""POST /v1/chat/completions for agents and plain models, JSON or OpenAI-format SSE chunks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from glm_agent._user_input import checked_messages
from glm_agent.agent import AgentRun
from glm_agent.exceptions import InvalidRequestError
from glm_agent.media import DEFAULT_LIMITS
from glm_agent.messages import (
    Message,
    ReasoningDelta,
    ResponseDone,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    ToolDefinition,
    Usage,
    UserMessage,
    messages_from_openai,
)
from glm_agent.models.base import ChatModel
from glm_agent.planner import pending_calls
from glm_agent.results import RunDone, RunResult
from glm_agent.serving._config import ApiKey
from glm_agent.serving._errors import HTTPProblem
from glm_agent.serving._schema import ChatCompletionRequest
from glm_agent.serving._state import ServedAgent, ServerState, error_event, guarded_stream, sse

__all__ = ["Chunks", "chat_completion", "drain", "output_text", "usage_json"]


def usage_json(usage: Usage) -> dict[str, int]:
    """Usage in OpenAI's field names."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def output_text(result: RunResult[Any]) -> str:
    """A run's answer as text (structured outputs as JSON)."""
    out = result.output
    if isinstance(out, str):
        return out
    dump = getattr(out, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    import json

    return json.dumps(out, ensure_ascii=False, default=str)


class Chunks:
    """Builds `chat.completion.chunk` objects sharing one id, model and timestamp."""

    def __init__(self, model: str) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.model = model
        self.created = int(time.time())

    def base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse({**self.base("chat.completion.chunk"), "choices": [choice]})

    def usage(self, usage: Usage) -> str:
        return sse(
            {**self.base("chat.completion.chunk"), "choices": [], "usage": usage_json(usage)}
        )

    def completion(self, message: dict[str, Any], finish: str, usage: Usage) -> dict[str, Any]:
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        return {**self.base("chat.completion"), "choices": [choice], "usage": usage_json(usage)}


def _messages(req: ChatCompletionRequest) -> list[Message]:
    try:
        return messages_from_openai([m.model_dump(exclude_none=True) for m in req.messages])
    except (ValueError, KeyError, TypeError) as e:
        raise HTTPProblem(400, f"bad messages: {e}", param="messages") from None


async def chat_completion(
    state: ServerState,
    req: ChatCompletionRequest,
    key: ApiKey,
    session_header: str | None,
    customer_header: str | None = None,
) -> dict[str, Any] | AsyncIterator[str]:
    """The completion (a JSON object) or its SSE stream."""
    if state.support is not None and req.model == state.support.agent.name:
        from glm_agent.serving._support_chat import support_completion

        return await support_completion(
            state, state.support, req, key, session_header, customer_header
        )
    if req.model in state.agents:
        return await _agent_completion(state, state.agents[req.model], req, key, session_header)
    if req.model in state.models:
        return await _model_completion(state, state.models[req.model], req)
    names = sorted([*state.agents, *state.models])
    raise HTTPProblem(
        404,
        f"the model {req.model!r} does not exist; models: {', '.join(names) or '(none)'}",
        code="model_not_found",
        param="model",
    )


# --- agents -----------------------------------------------------------------------------------


def _agent_inputs(
    served: ServedAgent, req: ChatCompletionRequest, session_id: str | None
) -> tuple[UserMessage, list[Message] | None]:
    msgs = _messages(req)
    last = msgs[-1]
    if not isinstance(last, UserMessage):
        raise HTTPProblem(
            400, "the last message must be the user's turn for an agent", param="messages"
        )
    if session_id is not None and served.agent.memory is not None:
        # The server holds the conversation: the client's copy of it is not replayed.
        return last, None
    agent = served.agent
    history = checked_messages(msgs[:-1], agent.media_limits, agent.model.media, served.name)
    if pending_calls(history):
        # An agent's tools run here, on the model's calls, never on calls a client wrote.
        raise InvalidRequestError(
            "the messages end with assistant tool calls that have no results; an agent runs its "
            "own tools and never runs calls sent by a client: leave them out, or send the "
            "conversation without them",
            param="messages",
        )
    return last, history


async def _agent_completion(
    state: ServerState,
    served: ServedAgent,
    req: ChatCompletionRequest,
    key: ApiKey,
    session_header: str | None,
) -> dict[str, Any] | AsyncIterator[str]:
    session_id = session_header or req.user
    prompt, history = _agent_inputs(served, req, session_id)
    chunks = Chunks(served.name)

    def run(stream: bool) -> AgentRun[Any]:
        return served.agent.iter(
            prompt,
            stream=stream,
            message_history=history,
            session_id=session_id,
            tenant=key.tenant,
            model_settings=req.settings(client_tools=False),
        )

    if not req.stream:
        result = await asyncio.wait_for(drain(run(False)), served.run_timeout)
        state.metrics.observe_run(served.name, result)
        message = {"role": "assistant", "content": output_text(result)}
        out = chunks.completion(message, "stop", result.usage)
        if session_id is not None:
            out["session_id"] = session_id
        return out
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def events() -> AsyncIterator[str]:
        yield chunks.delta({"role": "assistant", "content": ""})
        deadline = None if served.run_timeout is None else time.monotonic() + served.run_timeout
        async with run(True) as agent_run:
            async for event in agent_run:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError
                if isinstance(event, TextDelta):
                    yield chunks.delta({"content": event.content})
                elif isinstance(event, ReasoningDelta):
                    yield chunks.delta({"reasoning_content": event.content})
                elif isinstance(event, RunDone):
                    result = event.result
                    state.metrics.observe_run(served.name, result)
                    yield chunks.delta({}, "stop")
                    if include_usage:
                        yield chunks.usage(result.usage)
        # The agent's own tool calls are run here, not by the client, so they are not sent
        # as `tool_calls` deltas (a client would try to answer them).
        yield sse("[DONE]")

    return guarded_stream(state, events(), on_error=error_event, closing=[sse("[DONE]")])


async def drain(run: AgentRun[Any]) -> RunResult[Any]:
    """Run to the end; the result."""
    async with run:
        async for _ in run:
            pass
    assert run.result is not None
    return run.result


# --- plain models -----------------------------------------------------------------------------


async def _model_completion(
    state: ServerState, model: ChatModel, req: ChatCompletionRequest
) -> dict[str, Any] | AsyncIterator[str]:
    msgs = checked_messages(_messages(req), DEFAULT_LIMITS, model.media, req.model)
    tools = [ToolDefinition.from_openai(t.model_dump(exclude_none=True)) for t in req.tools or []]
    settings = req.settings()
    chunks = Chunks(req.model)
    if not req.stream:
        response = await model.request(msgs, tools, settings)
        state.metrics.tokens.labels(req.model, "input").inc(response.usage.input_tokens)
        state.metrics.tokens.labels(req.model, "output").inc(response.usage.output_tokens)
        msg = response.message
        message: dict[str, Any] = {"role": "assistant", "content": msg.content}
        if msg.reasoning is not None:
            message["reasoning_content"] = msg.reasoning
        if msg.tool_calls:
            message["tool_calls"] = [c.to_openai() for c in msg.tool_calls]
        return chunks.completion(message, response.finish_reason, response.usage)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def events() -> AsyncIterator[str]:
        yield chunks.delta({"role": "assistant", "content": ""})
        async for event in model.request_stream(msgs, tools, settings):
            if isinstance(event, TextDelta):
                yield chunks.delta({"content": event.content})
            elif isinstance(event, ReasoningDelta):
                yield chunks.delta({"reasoning_content": event.content})
            elif isinstance(event, ToolCallStart):
                call = {"name": event.name, "arguments": ""}
                yield chunks.delta(
                    {
                        "tool_calls": [
                            {
                                "index": event.index,
                                "id": event.id,
                                "type": "function",
                                "function": call,
                            }
                        ]
                    }
                )
            elif isinstance(event, ToolCallArgsDelta):
                part = {"index": event.index, "function": {"arguments": event.delta}}
                yield chunks.delta({"tool_calls": [part]})
            elif isinstance(event, ResponseDone):
                response = event.response
                state.metrics.tokens.labels(req.model, "input").inc(response.usage.input_tokens)
                state.metrics.tokens.labels(req.model, "output").inc(response.usage.output_tokens)
                yield chunks.delta({}, response.finish_reason)
                if include_usage:
                    yield chunks.usage(response.usage)
        yield sse("[DONE]")

    return guarded_stream(state, events(), on_error=error_event, closing=[sse("[DONE]")])
