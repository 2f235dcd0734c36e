"""`BotCore`: the support pipeline every door goes through.

A customer message goes: store it (redacted) → a human has the conversation? (then it is theirs)
→ a handoff trigger? → a pending confirmation? (yes / no) → a curated answer? → the agent, on the
conversation's session and with its verified customer. After the run: a verification the run
made is kept; a call a rule sent to review hands the conversation to a human; calls waiting for
the customer's "yes" are asked in words (the tool's `confirm` template); a failed tool is told to
the customer plainly and its detail goes to the human agents' console.

The widget API, the webhook and Feishu channels, the OpenAI-compatible API and the CLI all call
`handle` (or `send`, which streams its events); none has a path of its own. A customer's photos
come in the same message (a `UserMessage` with image parts) and are stored with the session
first (`_images.keep_images`): from there on they travel by reference.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from glm_agent import tracing
from glm_agent.approval import Approval, Approved, Rejected
from glm_agent.exceptions import GlmAgentError, InvalidRequestError
from glm_agent.messages import SystemMessage, TextDelta, ToolMessage, UserMessage
from glm_agent.results import RunResult
from glm_agent.serving.bot._conversations import HUMAN_STATES, ConversationLog, Emit, hash_token
from glm_agent.serving.bot._db import Conversation
from glm_agent.serving.bot._images import keep_images
from glm_agent.serving.bot.curated import CuratedAnswer
from glm_agent.serving.bot.handoff import (
    detect_handoff,
    extractive_summary,
    is_confirmation,
    is_refusal,
)
from glm_agent.serving.bot.replies import (
    cited_passages,
    language_of,
    outcome_text,
    whole_sentences,
)
from glm_agent.tools import Identity

__all__ = ["HUMAN_STATES", "BotCore", "Emit", "hash_token"]

log = logging.getLogger("glm_agent.support")

_MODEL_SUMMARY = (
    "Summarise this customer-service conversation for the human agent taking it over: who the "
    "customer is, what they want, ids and amounts, what the bot already did, why it is handed "
    "off. At most five lines."
)


class BotCore(ConversationLog):
    """The message pipeline: handoff triggers, confirmations, curated answers, the agent."""

    async def send(
        self, conv: Conversation, text: str | UserMessage
    ) -> AsyncIterator[dict[str, Any]]:
        """Handle a customer message, yielding its events, then `{"type": "done"}`.

        The work runs in its own task: a client that disconnects mid-reply does not cut the
        reply (or the stored turn) in half; the events it missed are in the event log.
        """
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def run() -> None:
            try:
                await self.handle(conv.id, text, queue.put)
            except GlmAgentError as e:
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

    async def handle(
        self, conversation_id: str, text: str | UserMessage, out: Emit | None = None
    ) -> None:
        """Handle one customer message, text or a `UserMessage` with photos (see the module
        docstring for the order of things)."""
        user = text if isinstance(text, UserMessage) else UserMessage(content=text)
        text = user.text.strip()
        if not text and not user.media:
            raise InvalidRequestError("the message text is empty", code="empty_message")
        async with self._lock(conversation_id):
            conv = self.conversation(conversation_id)
            lang = language_of(text, conv.locale or "zh") if text else conv.locale or "zh"
            if conv.locale != lang:
                conv.locale = lang  # each reply in the language of the message it answers
                self.db.update(self.tenant, conv.id, locale=lang)
            user, images = await keep_images(
                self.store,
                self.tenant,
                conv.id,
                user,
                config=self.config.images,
                model=self.agent.model,
                lang=lang,
            )
            log.info("customer %s: %s", conv.id, self.redactor.redact(text, "log"))
            extra = {"images": images} if images else {}
            await self.publish(conv, self._message("customer", text, "customer", **extra), out)
            if conv.status == "closed":
                await self.set_status(conv, "bot", out)
            if conv.status in HUMAN_STATES:
                await self.memory.commit(conv.id, [user])
                self.console_event("customer_message", conv, text=self._r(text), **extra)
                return
            trigger = detect_handoff(text, self.config.handoff)
            if trigger is not None:
                await self.memory.commit(conv.id, [user])
                await self.handoff(conv, trigger.reason, trigger.trigger, out)
                return
            if conv.pending and await self._resume(conv, text, out):
                return
            match = None if images else self.matcher.match(text)  # a photo is for the model
            if match is not None and match.score >= self.config.curated.threshold:
                await self._curated(conv, text, match.answer, match.score, out)
                return
            await self._model_turn(conv, user, out)

    async def _curated(
        self, conv: Conversation, text: str, answer: CuratedAnswer, score: float, out: Emit | None
    ) -> None:
        from glm_agent.messages import AssistantMessage

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

    async def _model_turn(self, conv: Conversation, user: UserMessage, out: Emit | None) -> None:
        low_confidence = False
        threshold = self.config.handoff.min_retrieval_score
        kb = getattr(self.agent, "knowledge", None)
        if threshold is not None and kb is not None and user.text.strip():
            hits = await kb.asearch(user.text, k=1, mode="dense")
            low_confidence = not hits or hits[0].score < threshold
        result = await self._run(conv, out, user)
        await self._after_run(conv, result, out, low_confidence=low_confidence)

    def _identity(self, conv: Conversation) -> Identity | None:
        if conv.verified_customer is None:
            return None
        return Identity(conv.verified_customer, conv.verified_by or "")

    async def _run(
        self,
        conv: Conversation,
        out: Emit | None,
        prompt: UserMessage | None,
        approvals: dict[str, Approval] | None = None,
    ) -> RunResult[Any] | None:
        """One agent run on the conversation's session (loaded and stored by the agent's
        memory, which is this bot's: redacted as it is stored), for its verified customer."""
        metadata = {
            "channel": conv.channel,
            "customer_id": conv.verified_customer or conv.customer_id,
            "conversation_id": conv.id,
        }
        run = self.agent.iter(
            prompt,
            stream=True,
            session_id=conv.id,
            tenant=self.tenant,
            approvals=approvals,
            metadata=metadata,
            identity=self._identity(conv),
        )
        try:
            async with run:
                async for event in run:
                    if isinstance(event, TextDelta) and out is not None:
                        await out({"type": "delta", "text": event.content})
        except Exception as e:
            log.warning("run failed for %s: %s", conv.id, self.redactor.redact(str(e), "log"))
            self.console_event("run_failed", conv, detail=self._r(f"{type(e).__name__}: {e}"))
            return None
        result: RunResult[Any] | None = run.result
        if result is not None and out is not None:
            u = result.usage  # for doors that report usage (the OpenAI API); never stored
            await out(
                {
                    "type": "usage",
                    "input_tokens": u.input_tokens,
                    "output_tokens": u.output_tokens,
                    "requests": u.requests,
                }
            )
        return result

    def _keep_identity(self, conv: Conversation, result: RunResult[Any]) -> None:
        identity = result.identity
        if identity is not None and identity.customer_id != conv.verified_customer:
            self.verify(conv, identity.customer_id, identity.verified_by)

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
        self._keep_identity(conv, result)
        called = [r.call.name for r in result.tool_calls]
        if called:
            self._tag(conv, intent=called[-1])
        for r in result.tool_calls:
            if r.detail:  # why a tool failed or was stopped: for the people, not the customer
                self.console_event(
                    "tool_outcome",
                    conv,
                    tool=r.call.name,
                    status=r.status,
                    detail=self._r(r.detail),
                )
        if result.status == "review":
            await self._review(conv, result, out)
            return
        if result.status == "deferred":
            await self._ask_confirmation(conv, result, out)
            return
        answer = result.output if isinstance(result.output, str) else json.dumps(result.output)
        last = result.last_message
        if result.steps and result.steps[-1].response.finish_reason == "length":
            answer = whole_sentences(answer)  # an answer cut by the token limit ends whole
        handoff_called = self.config.handoff.tool_name in called
        if answer.strip():
            cites = cited_passages(result.messages, answer)
            await self.publish(conv, self._message("bot", answer, "model", citations=cites), out)
        if handoff_called:
            await self.handoff(conv, "the assistant handed the conversation off", "model_tool", out)
        elif not answer.strip():
            await self._failure(conv, out, "the model gave no answer")
        elif low_confidence and not called and last is not None:
            if self.config.handoff.low_confidence_handoff:
                await self.handoff(conv, "low retrieval confidence", "low_confidence", out)
            else:
                await self._failure(conv, out, "low retrieval confidence", answered=True)
        else:
            self.db.update(self.tenant, conv.id, failures=0)

    async def _review(self, conv: Conversation, result: RunResult[Any], out: Emit | None) -> None:
        """A rule sent a call to a human: say so in the customer's words, then hand off."""
        lang = conv.locale or "zh"
        record = next(r for r in result.tool_calls if r.status == "review")
        definition = self._definition(record.call.name)
        text = outcome_text(
            definition, record.call.name, "refused", lang, record.call.args_dict(), record.content
        )
        await self.publish(conv, self._message("bot", text, "policy"), out)
        reason = f"{record.call.name} needs review ({record.detail or 'policy rule'})"
        await self.handoff(conv, reason, "policy_review", out)

    def _definition(self, name: str) -> Any:
        return next((d for d in self.agent.tools.definitions() if d.name == name), None)

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
        """Ask the customer, in words, to confirm the calls waiting for approval."""
        calls = result.deferred_calls
        lang = conv.locale or "zh"
        # Nothing unmasked is written while the customer decides: the session and the database
        # keep the calls redacted. The real arguments wait in this process's memory; when they
        # hold personal data and the answer reaches another worker (or a restarted one), the
        # customer is asked to repeat the request instead.
        real = {c.id: c.args_dict() for c in calls}
        stored = {
            cid: json.loads(self._r(json.dumps(args, ensure_ascii=False)))
            for cid, args in real.items()
        }
        self._pending_args[conv.id] = real
        masked = [cid for cid in real if stored[cid] != real[cid]]
        pending = {"calls": [c.id for c in calls], "args": stored, "masked": masked}
        self.db.update(self.tenant, conv.id, pending=pending)
        text = "\n".join(
            outcome_text(self._definition(c.name), c.name, "confirm", lang, c.args_dict())
            for c in calls
        )
        actions = [{"id": c.id, "tool": c.name} for c in calls]
        await self.publish(conv, self._message("bot", text, "confirmation", confirm=actions), out)

    async def _resume(self, conv: Conversation, text: str, out: Emit | None) -> bool:
        """Settle the pending confirmation with this message; True when the message was only
        the answer (yes / no), False when it also asks something new (handled after)."""
        assert conv.pending is not None
        yes = is_confirmation(text, self.config.confirm_words)
        no = is_refusal(text, self.config.decline_words)
        self.db.update(self.tenant, conv.id, pending=None)
        stored = conv.pending.get("args") or {}
        real = self._pending_args.pop(conv.id, None) or {}
        reason = "the customer did not confirm the action"
        lost = "the details of the request were not kept: ask the customer to repeat it"
        approvals: dict[str, Approval] = {}
        for call_id in conv.pending["calls"]:
            args = real.get(call_id)
            if args is None and call_id not in conv.pending.get("masked", []):
                args = stored.get(call_id)  # nothing was masked: the stored copy is the real one
            if not yes:
                approvals[call_id] = Rejected(reason)
            elif args is None:
                approvals[call_id] = Rejected(lost)
            else:
                approvals[call_id] = Approved(override_args=args)
        conv.pending = None
        result = await self._run(conv, out, None, approvals)
        await self._after_run(conv, result, out)
        # Neither yes nor no: the action was not confirmed, and the message is answered too.
        return yes or no

    # --- states ------------------------------------------------------------------------------

    async def handoff(
        self, conv: Conversation, reason: str, trigger: str, out: Emit | None = None
    ) -> int:
        """Hand the conversation to a human: a ticket with a summary, status waiting_human."""
        conv = self.conversation(conv.id)
        if conv.status in HUMAN_STATES:
            return 0
        summary = await self.summarize(conv, reason)
        ticket = self.db.add_ticket(self.tenant, conv.id, reason, trigger, self._r(summary))
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
