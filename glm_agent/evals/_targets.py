"""What a conversation is held with: the agent itself, or the support bot in front of it.

Either way a session takes one customer message at a time (`say`) and tells what followed: the
replies, the tool calls, the passages the model saw, a handoff, tokens and time. The agent
target settles calls waiting for approval the way the bot does: it asks the customer to confirm,
and the next message decides.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from glm_agent.agent import Agent, AgentRun, Prompt
from glm_agent.approval import Approval, Approved, Rejected
from glm_agent.evals._transcript import ToolUse, TurnResult, arguments_of, passages_in
from glm_agent.messages import Message, ModelResponse
from glm_agent.results import AgentStreamEvent, ModelResponseEvent, RunDone, ToolResultEvent

__all__ = ["AgentSession", "BotTarget", "Session", "confirmation_request"]

_TURN: contextvars.ContextVar[TurnResult | None] = contextvars.ContextVar(
    "glm_agent_eval_turn", default=None
)


class Session(Protocol):
    """One conversation with the target."""

    async def say(self, text: str) -> TurnResult:
        """Send a customer message; what followed it."""
        ...


def confirmation_request(calls: list[Any]) -> str:
    """What the agent target tells a customer whose request waits for their confirmation."""
    what = "; ".join(
        f"{c.name}({', '.join(f'{k}={v}' for k, v in c.args_dict().items())})" for c in calls
    )
    return f'Please confirm this action: {what}. Reply "yes" to go ahead; anything else cancels it.'


def _observe(turn: TurnResult, event: AgentStreamEvent, approvals: dict[str, Approval]) -> None:
    if isinstance(event, ToolResultEvent):
        confirmed = (
            isinstance(approvals.get(event.call.id), Approved) and event.status != "rejected"
        )
        turn.tools.append(
            ToolUse(
                event.call.name,
                arguments_of(event.call.arguments),
                event.status,
                event.content,
                confirmed=confirmed,
            )
        )
    elif isinstance(event, ModelResponseEvent):
        response: ModelResponse = event.response
        turn.input_tokens += response.usage.input_tokens
        turn.output_tokens += response.usage.output_tokens
        turn.requests += max(1, response.usage.requests)
    elif isinstance(event, RunDone):
        turn.passages = passages_in(event.result.messages) or turn.passages


class AgentSession:
    """A conversation with an agent (no memory: the history is kept here).

    Args:
        agent: The agent.
        deps: Handed to its tools (`RunContext.deps`), e.g. the case's database.
        confirm_words: Replies that confirm a call waiting for approval.
        handoff_tool: The tool whose call hands the conversation off.
        metadata: `RunContext.metadata` of every run.
    """

    def __init__(
        self,
        agent: Agent[Any],
        *,
        deps: Any,
        confirm_words: list[str],
        handoff_tool: str,
        metadata: dict[str, Any],
    ) -> None:
        self.agent = agent
        self.deps = deps
        self.confirm_words = confirm_words
        self.handoff_tool = handoff_tool
        self.metadata = metadata
        self.history: list[Message] = []
        self.pending: list[Any] = []

    async def say(self, text: str) -> TurnResult:
        """Send a customer message; a reply to a confirmation request settles the calls."""
        from glm_agent.evals._text import cited_numbers
        from glm_agent.evals._transcript import Reply
        from glm_agent.exceptions import GlmAgentError
        from glm_agent.serving.bot.handoff import is_confirmation

        turn, start = TurnResult(customer=text), time.perf_counter()
        approvals: dict[str, Approval] = {}
        prompt: str | None = text
        if self.pending:
            yes = is_confirmation(text, self.confirm_words)
            approvals = {
                c.id: Approved() if yes else Rejected("the customer did not confirm the action")
                for c in self.pending
            }
            prompt, self.pending = None, []
        run: AgentRun[Any] = self.agent.iter(
            prompt,
            message_history=self.history,
            approvals=approvals or None,
            deps=self.deps,
            metadata=dict(self.metadata),
        )
        try:
            async with run:
                async for event in run:
                    _observe(turn, event, approvals)
        except GlmAgentError as e:
            turn.error = f"{type(e).__name__}: {e}"
            turn.seconds = time.perf_counter() - start
            return turn
        result = run.result
        assert result is not None
        self.history = list(result.messages)
        if result.status == "deferred":
            self.pending = list(result.deferred_calls)
            turn.replies.append(Reply(confirmation_request(self.pending), "system"))
        else:
            answer = result.output if isinstance(result.output, str) else str(result.output)
            cited = cited_numbers(answer)
            citations = [{"n": p.n, "source": p.source} for p in turn.passages if p.n in cited]
            if answer.strip():
                turn.replies.append(Reply(answer, "model", citations))
        if any(c.name == self.handoff_tool and c.status == "ok" for c in turn.tools):
            turn.handoff, turn.handoff_trigger = True, "model_tool"
        turn.seconds = time.perf_counter() - start
        return turn


class _ObservedRuns:
    """Wraps the agent's `iter` so that a bot's runs are seen by the turn being evaluated (the
    turn is found through a context variable: concurrent cases each see their own)."""

    def __init__(self, original: Callable[..., AgentRun[Any]]) -> None:
        self.original = original

    def __call__(self, prompt: Prompt | None = None, **options: Any) -> AgentRun[Any]:
        run = self.original(prompt, **options)
        turn = _TURN.get()
        if turn is None:
            return run
        approvals = dict(options.get("approvals") or {})
        return AgentRun(self._watch(run, turn, approvals))

    async def _watch(
        self, run: AgentRun[Any], turn: TurnResult, approvals: dict[str, Approval]
    ) -> Any:
        async with run:
            try:
                async for event in run:
                    _observe(turn, event, approvals)
                    yield event
            except Exception as e:
                turn.error = f"{type(e).__name__}: {e}"
                raise


class BotTarget:
    """The support bot of an agent.yaml (its support.yaml), with its database in `workdir`.

    Args:
        agent: The agent the bot runs (built without memory: the bot keeps the sessions).
        agent_yaml: The agent.yaml (support.yaml, curated answers and knowledge sources are
            found beside it).
        workdir: Where the bot's database and sessions go (fresh for an evaluation).
    """

    def __init__(self, agent: Agent[Any], agent_yaml: Path, workdir: Path) -> None:
        from glm_agent.evals._models import support_config
        from glm_agent.serving.bot import SupportBot

        config = support_config(agent_yaml).model_copy(
            update={"database": str(workdir / "support.db")}
        )
        self.bot = SupportBot(agent, config, base_dir=agent_yaml.parent)
        self.bot.prepare()
        # The bot drives the agent itself; its runs are watched through this agent's `iter`
        # (the agent was built for this evaluation alone).
        agent.iter = _ObservedRuns(agent.iter)  # type: ignore[method-assign]

    def close(self) -> None:
        """Close the bot's database."""
        self.bot.close()

    async def session(self, customer_id: str, locale: str | None = None) -> BotSession:
        """A new web conversation of customer `customer_id`, in `locale` (`zh`/`en`) until the
        customer's messages show a language (as the widget passes the browser's)."""
        conv, _, _ = await self.bot.create_conversation("web", customer_id, locale)
        return BotSession(self, conv.id)


class BotSession:
    """A conversation through the bot's whole pipeline (`SupportBot.handle`)."""

    def __init__(self, target: BotTarget, conversation_id: str) -> None:
        self.target = target
        self.conversation_id = conversation_id

    async def say(self, text: str) -> TurnResult:
        """Send a customer message as the web widget does; what the bot did and said."""
        from glm_agent.evals._transcript import Reply

        bot = self.target.bot
        turn, start = TurnResult(customer=text), time.perf_counter()
        events: list[dict[str, Any]] = []

        async def collect(event: dict[str, Any]) -> None:
            events.append(event)

        token = _TURN.set(turn)
        try:
            await bot.handle(self.conversation_id, text, collect)
        finally:
            _TURN.reset(token)
        for e in events:
            if e["type"] == "message" and e["role"] != "customer":
                turn.replies.append(
                    Reply(
                        e["text"],
                        e.get("source", "system"),
                        list(e.get("citations") or []),
                        e.get("curated_id"),
                    )
                )
            elif e["type"] == "status" and e["status"] == "waiting_human":
                turn.handoff = True
        if turn.handoff:
            turn.handoff_trigger = bot.conversation(self.conversation_id).tags.get(
                "handoff_trigger"
            )
        turn.seconds = time.perf_counter() - start
        return turn
