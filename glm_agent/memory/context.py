"""The model's context from a session: newest turns first, older ones summarised, within a budget.

How the agent uses it for `Agent.run(..., session_id=...)` (`ConversationMemory` wraps exactly
these steps as `prepare` and `commit`):

```python
window = ContextWindow(max_tokens=128_000, reserve_output=4096,
                       count_tokens=tokenizer_count, summarize=summarize_with_model)
session = await store.load(tenant, session_id)
ctx = await window.build(system_prompt, session.messages if session else [],
                         [UserMessage(content=question)], session.summary if session else None)
if ctx.summary_changed:
    await store.set_summary(tenant, session_id, ctx.summary)
# ... the tool-calling loop starts from ctx.messages; its new messages form one turn:
await store.append(tenant, session_id, turn, expected_version=session.version if session else 0)
```

What goes in, in order: the system prompt, the rolling summary as a system message of its own, the
newest history turns that fit, the new messages. The summary is never written into the system
prompt: the prompt's first bytes stay the same from turn to turn, so a serving engine's prefix
cache (and the local runtime's prefix reuse) keeps hitting on the system prompt and tools. A tool
call and its results form one unit: both are sent or neither. When history does not fit, the oldest
units are dropped; with a `summarize` callable they are folded into the rolling summary instead,
and past a low-water mark (`keep_after_summary`) so the following turns fit without summarising
again: the summary is refreshed incrementally, from the previous summary and the newly dropped
messages only. Later steps of the same turn (after tool results) call `build` again with `new` =
the turn so far.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from glm_agent.exceptions import ContextLengthError, UserError
from glm_agent.memory._session import Summary
from glm_agent.messages import (
    AssistantMessage,
    MediaPart,
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

__all__ = [
    "ContextResult",
    "ContextWindow",
    "MediaCounter",
    "Summarizer",
    "TokenCounter",
    "estimate_media_tokens",
    "estimate_tokens",
    "turn_units",
]

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text (the local GLM tokenizer's count, or `estimate_tokens`)."""

MediaCounter = Callable[[MediaPart], int]
"""Counts the prompt tokens of an image or video (the model's `count_media_tokens`)."""


def estimate_media_tokens(part: MediaPart) -> int:
    """An image's or video's tokens by rule of thumb (`ImagePart.estimated_tokens`), for
    models that do not count their own."""
    return part.estimated_tokens()


Summarizer = Callable[[list[Message], str | None], Awaitable[str]]
"""`await summarize(messages, previous_summary)`: a new summary of both, made by the model."""


def estimate_tokens(text: str) -> int:
    """A conservative token count for models whose tokenizer is not at hand (remote models).

    ASCII letters and spaces run about four to a token in GLM's and OpenAI's tokenizers; we count
    three. Digits and punctuation (JSON, code) merge less: three quarters of a token each. Other
    characters (CJK above all) count one token each, at or above GLM-4's tokenizer for Chinese.
    Against glm-4-9b-chat's tokenizer this overestimates by 5-75% (checked in the tests).
    """
    letters = other_ascii = 0
    for c in text:
        if c.isascii():
            if c.isalpha() or c == " ":
                letters += 1
            else:
                other_ascii += 1
    return math.ceil(letters / 3 + other_ascii * 0.75) + (len(text) - letters - other_ascii)


def turn_units(messages: Sequence[Message]) -> list[tuple[int, int]]:
    """The messages as `[start, end)` units that are kept or dropped whole.

    An assistant message with tool calls and the tool results that follow it form one unit;
    every other message is a unit of its own.
    """
    units: list[tuple[int, int]] = []
    i, n = 0, len(messages)
    while i < n:
        j = i + 1
        m = messages[i]
        if isinstance(m, AssistantMessage) and m.tool_calls:
            ids = {c.id for c in m.tool_calls}
            while j < n:
                nxt = messages[j]
                if not (isinstance(nxt, ToolMessage) and nxt.tool_call_id in ids):
                    break
                j += 1
        units.append((i, j))
        i = j
    return units


@dataclass(frozen=True)
class ContextResult:
    """What `ContextWindow.build` returns."""

    messages: list[Message]
    """The messages to send to the model, in order."""
    summary: Summary | None
    """The rolling summary state after this build: store it when `summary_changed`."""
    summary_changed: bool
    """True when the summary was made or refreshed (the caller persists it with `set_summary`)."""
    history_start: int
    """Index of the first history message sent verbatim (`len(history)` when none is)."""
    dropped: int
    """History messages neither sent nor folded into the summary (only without `summarize`)."""
    tokens: int
    """Tokens of `messages` by the window's count."""


class ContextWindow:
    """Builds the model's context from a session under a token budget.

    Args:
        max_tokens: The model's context length.
        reserve_output: Tokens kept free for the answer (budget: `max_tokens - reserve_output`).
        count_tokens: Counts the tokens of a text (default: `estimate_tokens`).
        summarize: `await summarize(messages, previous_summary) -> str`; None drops old turns.
        message_overhead: Tokens each message costs beyond its text (role markers, separators).
        keep_after_summary: When summarising, keep verbatim only the newest turns that fill this
            fraction of the room left for history, so the next turns fit without summarising again.
        summary_prefix: The text put before the summary in its system message.
        count_media: Counts an image's or video's tokens (default: `estimate_media_tokens`;
            the agent passes its model's `count_media_tokens`).
    """

    def __init__(
        self,
        max_tokens: int,
        reserve_output: int = 1024,
        count_tokens: TokenCounter = estimate_tokens,
        summarize: Summarizer | None = None,
        *,
        message_overhead: int = 4,
        keep_after_summary: float = 0.5,
        summary_prefix: str = "Summary of the earlier conversation:\n",
        count_media: MediaCounter = estimate_media_tokens,
    ) -> None:
        if max_tokens <= reserve_output:
            raise UserError(
                f"max_tokens ({max_tokens}) must be larger than reserve_output ({reserve_output})"
            )
        if not 0.0 <= keep_after_summary <= 1.0:
            raise UserError(f"keep_after_summary must be in [0, 1], got {keep_after_summary}")
        self.max_tokens = max_tokens
        self.reserve_output = reserve_output
        self.count_tokens = count_tokens
        self.summarize = summarize
        self.message_overhead = message_overhead
        self.keep_after_summary = keep_after_summary
        self.summary_prefix = summary_prefix
        self.count_media = count_media

    @property
    def budget(self) -> int:
        """Tokens the messages may use: the context minus the output reserve."""
        return self.max_tokens - self.reserve_output

    def message_tokens(self, m: Message) -> int:
        """Tokens one message costs (its text, images, reasoning and tool calls, plus the
        overhead)."""
        n = self.message_overhead
        if isinstance(m, AssistantMessage):
            parts = [m.content or "", m.reasoning or ""]
            parts.extend(f"{c.name} {c.arguments}" for c in m.tool_calls)
            n *= 1 + len(m.tool_calls)
        elif isinstance(m, UserMessage | ToolMessage):
            parts = [m.text]
            n += sum(self.count_media(p) for p in m.media)
        else:
            parts = [m.content]
        return n + sum(self.count_tokens(p) for p in parts if p)

    def count(self, messages: Sequence[Message]) -> int:
        """Tokens a list of messages costs."""
        return sum(self.message_tokens(m) for m in messages)

    def _head(self, system: str | None, summary: Summary | None) -> list[Message]:
        head: list[Message] = [] if system is None else [SystemMessage(content=system)]
        if summary is not None and summary.text:
            head.append(SystemMessage(content=self.summary_prefix + summary.text))
        return head

    async def build(
        self,
        system: str | None,
        history: Sequence[Message],
        new: Sequence[Message] = (),
        summary: Summary | None = None,
        *,
        extra_tokens: int = 0,
    ) -> ContextResult:
        """The messages to send: system prompt, summary, newest history that fits, `new`.

        Args:
            system: The system prompt, or None.
            history: The session's messages so far, oldest first (`Session.messages`).
            new: This turn's messages so far (the user's question...); always sent whole.
            summary: The session's rolling summary (`Session.summary`), or None.
            extra_tokens: Tokens the rest of the prompt takes (tool definitions, template).

        Raises:
            ContextLengthError: the system prompt and `new` alone do not fit the budget.
        """
        budget = self.budget - extra_tokens
        fixed = self.count(new) + self.count(self._head(system, None))
        if fixed > budget:
            raise ContextLengthError(
                f"the system prompt and the new messages need {fixed} tokens; the budget is "
                f"{budget} ({self.max_tokens} context - {self.reserve_output} output reserve - "
                f"{extra_tokens} for tools and template)",
                needed=fixed,
                limit=budget,
            )
        units = turn_units(history)
        covered = 0 if summary is None else min(summary.covered, len(history))
        # A summary boundary inside a unit (it should not happen) resends the whole unit.
        units = [u for u in units if u[1] > covered]
        costs = [self.count(history[a:b]) for a, b in units]
        head_cost = self.count(self._head(system, summary))
        room = budget - head_cost - self.count(new)
        first = _first_fitting(units, costs, room, history)
        changed = False
        if first > 0 and self.summarize is not None:
            # Fold past the low-water mark, then keep folding while the longer summary crowds out
            # what was kept.
            first = max(
                first, _first_fitting(units, costs, room * self.keep_after_summary, history)
            )
            while True:
                cut = units[first][0] if first < len(units) else len(history)
                previous = None if summary is None else summary.text
                text = await self.summarize(list(history[covered:cut]), previous)
                summary, covered, changed = Summary(text=text, covered=cut), cut, True
                room = budget - self.count(self._head(system, summary)) - self.count(new)
                if first >= len(units) or sum(costs[first:]) <= room:
                    break
                first = max(first + 1, _first_fitting(units, costs, room, history))
        start = units[first][0] if first < len(units) else len(history)
        head = self._head(system, summary)
        if self.count(head) + self.count(new) > budget:
            head = self._head(system, None)  # a summary too long to send: better without it
        messages = [*head, *history[start:], *new]
        return ContextResult(
            messages=messages,
            summary=summary,
            summary_changed=changed,
            history_start=start,
            dropped=start - covered,
            tokens=self.count(messages),
        )


def _first_fitting(
    units: list[tuple[int, int]], costs: list[int], room: float, history: Sequence[Message]
) -> int:
    """Index of the oldest unit of the longest suffix of `units` that fits in `room`."""
    total = 0
    first = len(units)
    for i in range(len(units) - 1, -1, -1):
        if total + costs[i] > room:
            break
        total += costs[i]
        first = i
    # Never start with a tool result whose call was cut off, nor with an answer whose question
    # was: history starts at a user's turn.
    while first < len(units) and isinstance(
        history[units[first][0]], ToolMessage | AssistantMessage
    ):
        first += 1
    return first
