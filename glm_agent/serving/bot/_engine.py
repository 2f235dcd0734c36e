"""`BotCore`: the message pipeline (handoff triggers → curated answers → the agent,
with confirmation of state-changing tools) and handoff to humans."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from glm_agent import tracing
from glm_agent.approval import Approval, Approved, Rejected
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    TextDelta,
    ToolMessage,
    UserMessage,
)
from glm_agent.results import RunResult
from glm_agent.serving._errors import HTTPProblem
from glm_agent.serving.bot._conversations import HUMAN_STATES, ConversationLog, Emit, hash_token
from glm_agent.serving.bot._db import Conversation
from glm_agent.serving.bot.curated import CuratedAnswer
from glm_agent.serving.bot.handoff import detect_handoff, extractive_summary, is_confirmation

__all__ = ["HUMAN_STATES", "BotCore", "Emit", "cited_passages", "hash_token"]

log = logging.getLogger("glm_agent.support")

_CJK = re.compile(r"[\u3400-\u9fff]")
_MODEL_SUMMARY = (
    "Summarise this customer-service conversation for the human agent taking it over: who the "
    "customer is, what they want, ids and amounts, what the bot already did, why it is handed "
    "off. At most five lines."
)


_LABEL = re.compile(r"\n\[(\d+)\] ([^\n]*)")
_CITE = re.compile(r"\[(\d+)\]")


def cited_passages(messages: list[Message], answer: str) -> list[dict[str, Any]]:
    """{n, title, source} of the retrieved passages the answer cites as [n]."""
    context = next(
        (
            m.content
            for m in reversed(messages)
            if isinstance(m, SystemMessage) and "<context>" in m.content
        ),
        "",
    )
    labels = dict(_LABEL.findall(context))
    out = []
    for n in dict.fromkeys(_CITE.findall(answer)):
        if n in labels:
            title, _, where = labels[n].partition(" (")
            source = where.split(",")[0].rstrip(")")
            out.append({"n": int(n), "title": title, "source": source.rsplit("/", 1)[-1]})
    return out


class BotCore(ConversationLog):
    """The message pipeline: handoff triggers, curated answers, the agent, confirmations."""

    async def send(self, conv: Conversation, text: str) -> AsyncIterator[dict[str, Any]]:
        """Handle a customer message; yields its events, then `{"type": "done"}`. The work runs in
        its own task, so a client that disconnects does not cut a reply in half."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def run() -> None:
            try:
                await self.handle(conv.id, text, queue.put)
            except HTTPProblem as e:
                await queue.put({"type": "error", "message": e.message})
            except Exception:
                log.exception("message handling failed for %s", conv.id)
                await queue.put({"type": "error", "message": "internal error"})
            finally:
                await queue.put(None)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        while (event := await queue.get()) is not None:
            yield event
        yield {"type": "done"}

    async def handle(self, conversation_id: str, text: str, out: Emit | None = None) -> None:
        """Handle one customer message: store it, then route it (human, confirmation, handoff
        trigger, curated answer, the agent)."""
        text = text.strip()
        if not text:
            raise HTTPProblem(400, "the message text is empty", code="empty_message")
        async with self._lock(conversation_id):
            conv = self.conversation(conversation_id)
            if conv.locale is None:
                conv.locale = "zh" if _CJK.search(text) else "en"
                self.db.update(self.tenant, conv.id, locale=conv.locale)
            log.info("customer %s: %s", conv.id, self.redactor.redact(text, "log"))
            await self.publish(conv, self._message("customer", text, "customer"), out)
            if conv.status == "closed":
                await self.set_status(conv, "bot", out)
            if conv.status in HUMAN_STATES:
                await self.memory.commit(conv.id, [UserMessage(content=text)])
                self.console_event("customer_message", conv, text=self._r(text))
                return
            trigger = detect_handoff(text, self.config.handoff)
            if trigger is not None:
                await self.handoff(conv, trigger.reason, trigger.trigger, out)
                return
            if conv.pending:
                await self._resume(conv, text, out)
                return
            match = self.matcher.match(text)
            if match is not None and match.score >= self.config.curated.threshold:
                await self._curated(conv, text, match.answer, match.score, out)
                return
            await self._model_turn(conv, text, out)

    async def _curated(
        self, conv: Conversation, text: str, answer: CuratedAnswer, score: float, out: Emit | None
    ) -> None:
        await self.memory.commit(
            conv.id, [UserMessage(content=text), AssistantMessage(content=answer.answer)]
        )
        await self.publish(
            conv,
            self._message(
                "bot", answer.answer, "curated", curated_id=answer.id, score=round(score, 3)
            ),
            out,
        )
        self._tag(conv, intent=conv.tags.get("intent") or "faq")
        self.db.update(self.tenant, conv.id, failures=0)
        tracing.mark("curated_answer", id=answer.id, score=round(score, 3), conversation=conv.id)

    async def _model_turn(self, conv: Conversation, text: str, out: Emit | None) -> None:
        low_confidence = False
        threshold = self.config.handoff.min_retrieval_score
        kb = getattr(self.agent, "knowledge", None)
        if threshold is not None and kb is not None:
            hits = await kb.asearch(text, k=1, mode="dense")
            low_confidence = not hits or hits[0].score < threshold
        result = await self._run(conv, out, text)
        await self._after_run(conv, result, out, low_confidence=low_confidence)

    async def _run(
        self,
        conv: Conversation,
        out: Emit | None,
        prompt: str | None,
        approvals: dict[str, Approval] | None = None,
    ) -> RunResult[Any] | None:
        """One agent run on the conversation's session (loaded and stored by the agent's
        memory, which is this bot's: redacted as it is stored)."""
        metadata = {
            "channel": conv.channel,
            "customer_id": conv.customer_id,
            "conversation_id": conv.id,
        }
        run = self.agent.iter(
            prompt,
            stream=True,
            session_id=conv.id,
            tenant=self.tenant,
            approvals=approvals,
            metadata=metadata,
        )
        try:
            async with run:
                async for event in run:
                    if isinstance(event, TextDelta) and out is not None:
                        await out({"type": "delta", "text": event.content})
        except Exception as e:
            log.warning("run failed for %s: %s", conv.id, self.redactor.redact(str(e), "log"))
            return None
        result: RunResult[Any] | None = run.result
        return result

    async def _after_run(
        self,
        conv: Conversation,
        result: RunResult[Any] | None,
        out: Emit | None,
        *,
        low_confidence: bool = False,
    ) -> None:
        if result is None:
            await self._failure(conv, out, "the model run failed")
            return
        called = [r.call.name for r in result.tool_calls]
        if called:
            self._tag(conv, intent=called[-1])
        if result.status == "deferred":
            await self._ask_confirmation(conv, result, out)
            return
        answer = result.output if isinstance(result.output, str) else json.dumps(result.output)
        handoff_called = self.config.handoff.tool_name in called
        if answer.strip():
            cites = cited_passages(result.messages, answer)
            await self.publish(conv, self._message("bot", answer, "model", citations=cites), out)
        if handoff_called:
            await self.handoff(conv, "the assistant handed the conversation off", "model_tool", out)
        elif not answer.strip():
            await self._failure(conv, out, "the model gave no answer")
        elif low_confidence and not called:
            if self.config.handoff.low_confidence_handoff:
                await self.handoff(conv, "low retrieval confidence", "low_confidence", out)
            else:
                await self._failure(conv, out, "low retrieval confidence", answered=True)
        else:
            self.db.update(self.tenant, conv.id, failures=0)

    async def _failure(
        self, conv: Conversation, out: Emit | None, why: str, *, answered: bool = False
    ) -> None:
        failures = self.conversation(conv.id).failures + 1
        self.db.update(self.tenant, conv.id, failures=failures)
        if failures >= self.config.handoff.max_failures:
            await self.handoff(conv, f"{failures} failed answers in a row ({why})", "failures", out)
        elif not answered:
            await self.publish(
                conv,
                self._message(
                    "bot",
                    self._t(
                        conv,
                        "抱歉，我没有理解您的问题，能换个说法吗？",
                        "Sorry, I could not answer that. Could you rephrase it?",
                    ),
                    "system",
                ),
                out,
            )

    async def _ask_confirmation(
        self, conv: Conversation, result: RunResult[Any], out: Emit | None
    ) -> None:
        calls = result.deferred_calls
        # The session holds the call redacted; its real arguments wait here for the answer.
        pending = {"calls": [c.id for c in calls], "args": {c.id: c.args_dict() for c in calls}}
        self.db.update(self.tenant, conv.id, pending=pending)
        what = "; ".join(
            f"{c.name}({', '.join(f'{k}={v}' for k, v in c.args_dict().items())})" for c in calls
        )
        text = self._t(
            conv,
            f"请确认是否执行以下操作：{what}。回复“确认”继续，回复其他内容将取消。",
            f'Please confirm this action: {what}. Reply "yes" to go ahead; '
            "anything else cancels it.",
        )
        await self.publish(
            conv, self._message("bot", text, "system", confirm=[c.name for c in calls]), out
        )

    async def _resume(self, conv: Conversation, text: str, out: Emit | None) -> None:
        assert conv.pending is not None
        yes = is_confirmation(text, self.config.confirm_words)
        self.db.update(self.tenant, conv.id, pending=None)
        args = conv.pending.get("args") or {}
        approvals: dict[str, Approval] = {
            call_id: Approved(override_args=args.get(call_id))
            if yes
            else Rejected("the customer did not confirm the action")
            for call_id in conv.pending["calls"]
        }
        result = await self._run(conv, out, None, approvals)
        await self._after_run(conv, result, out)

    # --- states ------------------------------------------------------------------------------

    async def handoff(
        self, conv: Conversation, reason: str, trigger: str, out: Emit | None = None
    ) -> int:
        """Hand the conversation to a human: a ticket with a summary, status waiting_human."""
        conv = self.conversation(conv.id)
        if conv.status in HUMAN_STATES:
            return 0
        summary = await self.summarize(conv, reason)
        ticket = self.db.execute(
            "INSERT INTO tickets (tenant, conversation_id, reason, trigger, summary, status,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (self.tenant, conv.id, reason, trigger, self._r(summary), "open", time.time()),
        )
        if conv.pending:
            # Settle calls left waiting for a confirmation, so the stored transcript never ends
            # on a tool call without a result (the model would be asked about it again later).
            settled = [
                ToolMessage(
                    content="the call was not approved: handed off to a human agent",
                    tool_call_id=call_id,
                    is_error=True,
                )
                for call_id in conv.pending["calls"]
            ]
            await self.memory.commit(conv.id, list(settled))
            self.db.update(self.tenant, conv.id, pending=None)
        self._tag(conv, handed_off=True, handoff_trigger=trigger)
        tracing.mark("handoff", trigger=trigger, reason=reason, ticket=ticket, conversation=conv.id)
        await self.set_status(conv, "waiting_human", out)
        await self.publish(
            conv,
            self._message(
                "system",
                self._t(
                    conv,
                    "正在为您转接人工客服，请稍候。",
                    "Connecting you to a human agent, please wait.",
                ),
                "system",
            ),
            out,
        )
        self.console_event("waiting", conv, ticket_id=ticket, reason=reason)
        return ticket

    async def summarize(self, conv: Conversation, reason: str) -> str:
        """The ticket summary: written by the agent's model, or extractive (offline model)."""
        pairs = self.transcript_pairs(conv)
        mode = self.config.handoff.summary
        if mode == "auto":
            from glm_agent.serving.bot import offline_model

            fn = getattr(self.agent.model, "function", None)
            mode = "extractive" if fn is offline_model.reply else "model"
        if mode == "model":
            lines = "\n".join(f"{r}: {t}" for r, t in pairs) + f"\nHandoff reason: {reason}"
            try:
                response = await self.agent.model.request(
                    [SystemMessage(content=_MODEL_SUMMARY), UserMessage(content=lines)]
                )
                if text := (response.message.content or "").strip():
                    return str(text)
            except Exception as e:
                log.warning("summary by the model failed (%s); using an extractive one", e)
        return extractive_summary(pairs, reason)
