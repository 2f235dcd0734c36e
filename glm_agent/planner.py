"""The tool-calling loop: model turn → tool calls → execution → results → next turn.

One readable loop (`Planner.iter`, an async generator) over typed step records: it yields each
event as it happens and ends with `RunDone`, so callers pull a run instead of being pushed to.
Everything the model got wrong and can correct (bad arguments, an unknown tool, a failing tool,
an answer that does not fit the output type) is written back to it, within a retry budget; past
the budget the run fails with `RetriesExhausted`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from glm_agent._execution import decode_arguments, execute_calls
from glm_agent._output import OutputSchema
from glm_agent.approval import Approval, ApprovalHandler
from glm_agent.exceptions import (
    MaxStepsExceeded,
    ModelRetry,
    RetriesExhausted,
    RunCancelled,
    UsageLimitExceeded,
    UserError,
)
from glm_agent.messages import (
    AssistantMessage,
    Content,
    Message,
    ModelResponse,
    ResponseDone,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
)
from glm_agent.models import ChatModel
from glm_agent.models import _traced as traced
from glm_agent.results import (
    AgentStreamEvent,
    ModelResponseEvent,
    RunDone,
    RunResult,
    StepRecord,
    StepStart,
    ToolCallRecord,
    ToolResultEvent,
    UsageLimits,
)
from glm_agent.settings import ModelSettings
from glm_agent.tools import MemoryPolicyState, PolicyState, RunContext, ToolRegistry

__all__ = ["Planner", "pending_calls"]

_FAILED = {"error", "invalid_arguments", "unknown_tool", "timeout"}
"""Outcomes the model caused and may correct: they count against the retry budget. A tool's
refusal and a policy's denial are answers to explain, not mistakes."""
_STOPS = {"deferred", "review"}
"""Outcomes that end the run: a call waits for approval, or for a human's review."""


def pending_calls(messages: Sequence[Message]) -> list[ToolCall]:
    """Tool calls of the last assistant turn that have no result yet (deferred approvals)."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, AssistantMessage):
            answered = {x.tool_call_id for x in messages[i + 1 :] if isinstance(x, ToolMessage)}
            return [c for c in m.tool_calls if c.id not in answered]
    return []


@dataclass
class Planner:
    """Runs the loop for one agent configuration."""

    model: ChatModel
    registry: ToolRegistry
    output: OutputSchema[Any] | None = None
    settings: ModelSettings = field(default_factory=ModelSettings)
    max_steps: int = 10
    retries: int = 2
    usage_limits: UsageLimits | None = None
    approval_handler: ApprovalHandler | None = None
    policy_state: PolicyState = field(default_factory=MemoryPolicyState)
    """Per-customer call counts for tools with a `per_customer` limit."""

    def __post_init__(self) -> None:
        if self.output is not None and self.output.definition.name in self.registry:
            raise UserError(
                f"the tool name {self.output.definition.name!r} is taken by the agent's "
                "structured output; rename the tool"
            )

    def tool_definitions(self, tool_choice: str | None) -> list[ToolDefinition]:
        """What the model is offered this turn."""
        if tool_choice == "none":
            return [self.output.definition] if self.output else []
        defs = self.registry.definitions()
        return [*defs, self.output.definition] if self.output else defs

    async def iter(
        self,
        messages: list[Message],
        ctx: RunContext[Any],
        *,
        new_from: int = 0,
        approvals: Mapping[str, Approval] | None = None,
        stream: bool = False,
        cancelled: Callable[[], bool] | None = None,
    ) -> AsyncIterator[AgentStreamEvent]:
        """Run until a final answer, yielding each event; the last is `RunDone`.

        Args:
            messages: The full conversation to send (system prompt, history, the new turn).
                Extended in place: it becomes the transcript.
            ctx: The context tools receive (deps, session, tenant).
            new_from: Index of the first message this run added (for `new_messages`).
            approvals: Decisions for calls deferred by an earlier run, by call id.
            stream: Stream the model (its deltas are yielded as they come).
            cancelled: Polled between steps; true ends the run with `RunCancelled`.
        """
        start = time.perf_counter()
        # Tool sources (MCP servers) start with the first run that needs them; cheap after.
        await self.registry.ready()
        steps: list[StepRecord] = []
        usage = Usage()
        failures: Counter[str] = Counter()
        first_choice = self.settings.tool_choice
        # After the first tool call the forced choice is lifted; the settings for that are
        # made once per run, not once per step.
        free_settings = self.settings.model_copy(update={"tool_choice": None})
        tools_called = False
        resumed: list[ToolCallRecord] = []

        def done(output: Any, records: Sequence[ToolCallRecord] = ()) -> RunDone:
            review = [r.call for r in records if r.status == "review"]
            deferred = review or [r.call for r in records if r.status == "deferred"]
            status: Literal["completed", "deferred", "review"] = (
                "review" if review else "deferred" if deferred else "completed"
            )
            return RunDone(
                result=RunResult(
                    output=output,
                    messages=messages,
                    new_messages=messages[new_from:],
                    steps=steps,
                    usage=usage,
                    seconds=time.perf_counter() - start,
                    status=status,
                    deferred_calls=deferred,
                    session_id=ctx.session_id,
                    resumed_calls=resumed,
                    identity=ctx.identity,
                )
            )

        # Calls left waiting for approval by an earlier run are settled before the model runs.
        # Only those: an unanswered call of a tool that needs no approval was never deferred
        # (a client may have written it into the history), so it is reported, never run.
        pending = pending_calls(messages)
        unknown = [i for i in approvals or {} if i not in {c.id for c in pending}]
        if unknown:
            names = ", ".join(c.id for c in pending if self._awaits_approval(c)) or "none"
            raise UserError(
                f"no call {', '.join(map(repr, unknown))} waits for approval in this "
                f"conversation (waiting: {names})"
            )
        if not pending and not any(not isinstance(m, SystemMessage) for m in messages):
            raise UserError("there is nothing to answer: give a prompt or a message history")
        if pending:
            waiting = [c for c in pending if self._awaits_approval(c)]
            records = resumed = await execute_calls(
                waiting,
                self.registry,
                ctx,
                approval_handler=self.approval_handler,
                decided=approvals or {},
                policy_state=self.policy_state,
            )
            records += [
                ToolCallRecord(
                    c,
                    "rejected",
                    "this call was not run: only calls waiting for approval are resumed",
                    detail="an unanswered call in the history that no run deferred",
                )
                for c in pending
                if c not in waiting
            ]
            records.sort(key=lambda r: pending.index(r.call))
            for result in self._record_results(records, messages):
                yield result
            if any(r.status in _STOPS for r in records):
                yield done(None, records)
                return

        step = 0
        while True:
            step += 1
            if cancelled is not None and cancelled():
                raise RunCancelled(f"run cancelled before step {step}", messages=messages)
            self._check_limits(step, usage, messages)
            # A forced tool_choice holds until a tool has been called; after that the model
            # must be free to answer from the results.
            choice = None if tools_called else first_choice
            settings = free_settings if choice is None else self.settings
            ctx.step, ctx.usage, ctx.messages = step, usage, messages
            t_step = time.perf_counter()
            yield StepStart(step=step)
            definitions = self.tool_definitions(choice)
            response: ModelResponse | None = None
            if stream:
                events = traced.request_stream(self.model, messages, definitions, settings)
                async for event in events:
                    if isinstance(event, ResponseDone):
                        response = event.response
                    else:
                        yield event
                if response is None:
                    raise UserError(f"{self.model!r} ended its stream without a ResponseDone")
            else:
                response = await traced.request(self.model, messages, definitions, settings)
            model_seconds = time.perf_counter() - t_step
            usage = usage + response.usage
            over = self.usage_limits.exceeded(usage) if self.usage_limits else None
            if over:
                raise UsageLimitExceeded(over, messages=messages)
            reply = response.message
            messages.append(reply)
            record = StepRecord(step, response, model_seconds=model_seconds)
            steps.append(record)
            yield ModelResponseEvent(step=step, response=response)

            calls = list(reply.tool_calls)
            if not calls:
                try:
                    output = self._final_from_text(reply.content or "", choice)
                except ModelRetry as e:
                    self._count_failure(failures, "output", e.message, messages)
                    messages.append(UserMessage(content=e.message))
                    record.total_seconds = time.perf_counter() - t_step
                    continue
                record.total_seconds = time.perf_counter() - t_step
                yield done(output)
                return

            tools_called = True
            t_tools = time.perf_counter()
            output_names = {d.name for d in definitions if d.kind == "output"}
            output_calls = [c for c in calls if c.name in output_names]
            records = await execute_calls(
                [c for c in calls if c.name not in output_names],
                self.registry,
                ctx,
                approval_handler=self.approval_handler,
                policy_state=self.policy_state,
            )
            final: list[Any] = []
            records += [self._output_record(call, final) for call in output_calls]
            records.sort(key=lambda r: calls.index(r.call))
            record.tool_calls = records
            record.tools_seconds = time.perf_counter() - t_tools
            for result in self._record_results(records, messages):
                yield result
            for r in records:
                key = "output" if r.call.name in output_names else r.call.name
                if r.status in _FAILED:
                    self._count_failure(failures, key, r.content, messages)
                elif r.status == "ok":
                    failures.pop(key, None)
            record.total_seconds = time.perf_counter() - t_step
            if any(r.status in _STOPS for r in records):
                yield done(None, records)
                return
            if final:
                yield done(final[0])
                return

    def _awaits_approval(self, call: ToolCall) -> bool:
        return call.name in self.registry and self.registry.get(call.name).policy.requires_approval

    def _check_limits(self, step: int, usage: Usage, messages: list[Message]) -> None:
        if step > self.max_steps:
            raise MaxStepsExceeded(
                f"the model took more than max_steps={self.max_steps} turns without a final answer",
                messages=messages,
            )
        limit = self.usage_limits.request_limit if self.usage_limits else None
        if limit is not None and usage.requests >= limit:
            raise UsageLimitExceeded(f"request_limit of {limit} reached", messages=messages)

    def _final_from_text(self, text: str, choice: str | None) -> Any:
        if choice not in (None, "auto", "none"):
            names = ", ".join(self.registry.names)
            wanted = "one of the tools" if choice == "required" else f"the tool {choice!r}"
            raise ModelRetry(f"you must call {wanted} before answering; tools: {names}")
        if self.output is None:
            return text
        return self.output.validate_text(text)

    def _output_record(self, call: ToolCall, final: list[Any]) -> ToolCallRecord:
        assert self.output is not None
        try:
            final.append(self.output.validate_args(decode_arguments(call.name, call.arguments)))
        except ModelRetry as e:
            return ToolCallRecord(call, "invalid_arguments", e.message)
        return ToolCallRecord(call, "ok", "final result accepted")

    def _with_images(self, r: ToolCallRecord) -> Content:
        """A result's text, with the images the tool returned where the model reads them."""
        if not r.media:
            return r.content
        reads = self.model.media
        if reads is not None and "image" not in reads:
            note = f"\n({len(r.media)} image(s) returned, not shown: this model reads no images)"
            return r.content + note
        return (TextPart(text=r.content), *r.media) if r.content else tuple(r.media)

    def _record_results(
        self, records: list[ToolCallRecord], messages: list[Message]
    ) -> list[ToolResultEvent]:
        """Append the results to the transcript (calls waiting for approval get none yet)."""
        events = []
        for r in records:
            if r.status == "deferred":
                continue
            messages.append(
                ToolMessage(
                    content=self._with_images(r),
                    tool_call_id=r.call.id,
                    name=r.call.name,
                    is_error=r.status not in ("ok",),
                )
            )
            events.append(
                ToolResultEvent(call=r.call, status=r.status, content=r.content, seconds=r.seconds)
            )
        return events

    def _count_failure(
        self, failures: Counter[str], key: str, detail: str, messages: list[Message]
    ) -> None:
        failures[key] += 1
        limit = self.retries
        if key in self.registry:
            policy_limit = self.registry.get(key).policy.max_retries
            limit = policy_limit if policy_limit is not None else limit
        if failures[key] > limit:
            what = "the final answer" if key == "output" else f"tool {key!r}"
            raise RetriesExhausted(
                f"{what} failed {failures[key]} times, over the retry budget of {limit}; "
                f"last error: {detail}",
                messages=messages,
            )
