"""Executing one turn's tool calls: validation, policies, approval, concurrency, and what the
model is told about each outcome."""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from glm_agent import tracing
from glm_agent._policy_checks import Verdict, after_call, after_success, before_call, error_content
from glm_agent.approval import Approval, ApprovalHandler, Approved, Deferred, Rejected
from glm_agent.exceptions import ModelRetry, ToolArgumentsError, ToolRefused, UnknownToolError
from glm_agent.messages import ImagePart, TextPart, ToolCall
from glm_agent.results import ToolCallRecord, ToolStatus
from glm_agent.tools import (
    MemoryPolicyState,
    PolicyState,
    RunContext,
    Tool,
    ToolRegistry,
    format_tool_result,
)

__all__ = ["decode_arguments", "execute_calls"]

log = logging.getLogger("glm_agent.tools")


def decode_arguments(tool_name: str, arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as a dict; bad JSON is a correctable `ToolArgumentsError`."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as e:
        # Quote what arrived (a call the parser could not read intact keeps its raw text), so
        # the model sees what to fix.
        seen = arguments if len(arguments) <= 300 else arguments[:300] + "..."
        raise ToolArgumentsError(
            tool_name, [f"arguments are not valid JSON ({e.msg}); received: {seen}"]
        ) from None
    if not isinstance(value, dict):
        raise ToolArgumentsError(tool_name, ["arguments must be a JSON object"])
    return value


async def _decide(
    handler: ApprovalHandler | None, ctx: RunContext[Any], call: ToolCall, args: dict[str, Any]
) -> Approval:
    if handler is None:
        return Deferred()
    decision = handler(ctx, call, args)
    if inspect.isawaitable(decision):
        decision = await decision
    if decision is True:
        return Approved()
    if decision is False:
        return Rejected()
    assert isinstance(decision, Approved | Rejected | Deferred)
    return decision


_FAILED = ("error", "invalid_arguments", "unknown_tool", "timeout")


async def _run_one(
    call: ToolCall,
    registry: ToolRegistry,
    ctx: RunContext[Any],
    approval_handler: ApprovalHandler | None,
    decided: Mapping[str, Approval],
    state: PolicyState,
) -> ToolCallRecord:
    if not tracing.enabled():
        return await _execute(call, registry, ctx, approval_handler, decided, state)
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    }
    with tracing.span(f"execute_tool {call.name}", attributes) as span:
        record = await _execute(call, registry, ctx, approval_handler, decided, state)
        span.set_attribute("glm_agent.tool.status", record.status)
        if record.status in _FAILED:
            # The operator's view: what went wrong (the model only saw a reference).
            tracing.set_error(span, record.status, record.detail or record.content)
        if record.status != "deferred" and tracing.capture_content():
            result = tracing.content_json(record.content)
            span.add_event("gen_ai.tool.call.result", {"gen_ai.tool.call.result": result})
        return record


def split_images(value: Any) -> tuple[Any, tuple[ImagePart, ...]]:
    """A tool's return value without its images, and the images: a tool returns an
    `ImagePart`, or a list of them with text (`TextPart`s or strings) around them."""
    if isinstance(value, ImagePart):
        return "", (value,)
    if not isinstance(value, list | tuple) or not any(isinstance(v, ImagePart) for v in value):
        return value, ()
    images = tuple(v for v in value if isinstance(v, ImagePart))
    rest = [v.text if isinstance(v, TextPart) else v for v in value if not isinstance(v, ImagePart)]
    if all(isinstance(v, str) for v in rest):
        return "".join(rest), images
    return rest, images


async def _execute(
    call: ToolCall,
    registry: ToolRegistry,
    ctx: RunContext[Any],
    approval_handler: ApprovalHandler | None,
    decided: Mapping[str, Approval],
    state: PolicyState,
) -> ToolCallRecord:
    start = time.perf_counter()

    def record(
        status: ToolStatus, content: str, detail: str = "", media: tuple[ImagePart, ...] = ()
    ) -> ToolCallRecord:
        seconds = time.perf_counter() - start
        return ToolCallRecord(call, status, content, seconds, detail, media)

    def stopped(verdict: Verdict) -> ToolCallRecord:
        return record(verdict.status, verdict.content, verdict.detail)

    try:
        tool: Tool = registry.get(call.name)
    except UnknownToolError as e:
        return record("unknown_tool", e.message)
    call_ctx = copy.copy(ctx)  # the run's context, for this call (cheaper than replace())
    call_ctx.tool_name, call_ctx.tool_call_id = call.name, call.id
    try:
        # Validated once: the approval handler and the implementation see the same arguments.
        kwargs = tool.validate(decode_arguments(call.name, call.arguments))
    except ToolArgumentsError as e:
        return record("invalid_arguments", e.message + ". Fix the arguments and call it again.")
    if tracing.capturing():
        arguments = tracing.content_json(tool.redacted(kwargs))
        tracing.current_span().add_event(
            "gen_ai.tool.call.arguments", {"gen_ai.tool.call.arguments": arguments}
        )
    try:
        # Policies first: nobody is asked to approve what they may not do.
        verdict, facts = await before_call(tool, kwargs, ctx, registry, state)
        if verdict is not None:
            return stopped(verdict)
        if tool.policy.requires_approval:
            decision = decided.get(call.id) or await _decide(
                approval_handler, call_ctx, call, kwargs
            )
            if isinstance(decision, Deferred):
                return record("deferred", "waiting for approval")
            if isinstance(decision, Rejected):
                return record("rejected", f"the call was not approved: {decision.reason}")
            if isinstance(decision, Approved) and decision.override_args is not None:
                try:
                    kwargs = tool.validate(decision.override_args)
                except ToolArgumentsError as e:
                    return record("invalid_arguments", e.message)
                verdict, facts = await before_call(tool, kwargs, ctx, registry, state)
                if verdict is not None:
                    return stopped(verdict)
            call_ctx.approved = True
        value = await tool.execute(kwargs, call_ctx)
    except ToolArgumentsError as e:  # raised by the implementation itself
        return record("invalid_arguments", e.message)
    except ToolRefused as e:
        return record("refused", error_content(e.code, message=e.message, **e.facts), str(e))
    except ModelRetry as e:
        return record("error", e.message)
    except TimeoutError:
        return record("timeout", f"tool {call.name!r} timed out after {tool.policy.timeout:g} s")
    except Exception as e:
        # An unexpected failure: the model (and so the customer) hears that it did not work;
        # what went wrong is for the logs and the people who fix it.
        reference = "E-" + secrets.token_hex(4)
        detail = f"{reference}: {type(e).__name__}: {e}"
        log.warning("tool %r failed (%s)", call.name, detail)
        return record("error", error_content("tool_failed", reference=reference), detail)
    verdict = after_call(tool, value, kwargs, facts, ctx)
    if verdict is not None:
        return stopped(verdict)
    await after_success(tool, value, ctx, state)
    text, media = split_images(value)
    return record(
        "ok", format_tool_result(text) if media else format_tool_result(value), media=media
    )


async def execute_calls(
    calls: Sequence[ToolCall],
    registry: ToolRegistry,
    ctx: RunContext[Any],
    *,
    approval_handler: ApprovalHandler | None = None,
    decided: Mapping[str, Approval] | None = None,
    policy_state: PolicyState | None = None,
) -> list[ToolCallRecord]:
    """Run the calls of one turn concurrently, each under its tool's policy.

    Never raises for a tool's failure: every outcome becomes a record whose `content` is what
    the model is told. Results come back in the order of `calls`.
    """
    decided = decided or {}
    state = policy_state or MemoryPolicyState()
    tasks = [_run_one(c, registry, ctx, approval_handler, decided, state) for c in calls]
    if len(tasks) == 1:
        return [await tasks[0]]
    return list(await asyncio.gather(*tasks))
