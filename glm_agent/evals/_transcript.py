"""What happened in an evaluated conversation: turns, replies, tool calls, passages, usage."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from glm_agent.messages import Message, SystemMessage, ToolMessage

__all__ = ["Conversation", "Passage", "Reply", "ToolUse", "TurnResult", "passages_in"]

_PASSAGE = re.compile(r"\n\[(\d+)\] ([^\n]*)\n(.*?)(?=\n\[\d+\] |\n</context>|\Z)", re.S)


@dataclass
class ToolUse:
    """One tool call and its outcome."""

    name: str
    """The tool."""
    arguments: dict[str, Any]
    """Its arguments (as the model gave them)."""
    status: str
    """`ok`, `error`, `invalid_arguments`, `unknown_tool`, `timeout`, `rejected`."""
    content: str
    """What the model was told."""
    confirmed: bool = False
    """It ran after the customer confirmed it (a call that waited for approval)."""


@dataclass
class Reply:
    """A message the customer got."""

    text: str
    """Its text."""
    source: str
    """`model` (the agent's answer), `curated` (an approved answer) or `system` (the bot's own:
    confirmation requests, handoff notices)."""
    citations: list[dict[str, Any]] = field(default_factory=list)
    """Passages it cites: `{n, source, title}`."""
    curated_id: int | None = None
    """The curated answer given, if any."""


@dataclass
class Passage:
    """A retrieved passage the model was shown."""

    n: int
    """Its number in the context ([n])."""
    source: str
    """Its file name."""
    text: str
    """Its text."""


@dataclass
class TurnResult:
    """One customer message and everything that followed it."""

    customer: str
    """What the customer said."""
    replies: list[Reply] = field(default_factory=list)
    """What they got back."""
    tools: list[ToolUse] = field(default_factory=list)
    """Tool calls made in this turn."""
    passages: list[Passage] = field(default_factory=list)
    """Passages retrieved for this turn."""
    handoff: bool = False
    """The conversation was handed to a human in this turn."""
    handoff_trigger: str | None = None
    """Why (`customer_request`, `sensitive_topic`, `model_tool`, `failures`...)."""
    input_tokens: int = 0
    """Model input tokens of the turn (the bot's model only)."""
    output_tokens: int = 0
    """Model output tokens of the turn."""
    requests: int = 0
    """Model requests of the turn."""
    seconds: float = 0.0
    """Wall time until the last reply."""
    error: str | None = None
    """The run failed: the error."""

    def text(self, source: str | None = None) -> str:
        """The replies' texts (of one source), one per line."""
        return "\n".join(r.text for r in self.replies if source is None or r.source == source)


@dataclass
class Conversation:
    """An evaluated conversation: the task output every check reads."""

    case_id: str
    """The case."""
    turns: list[TurnResult] = field(default_factory=list)
    """The turns, in order."""
    ended: str = "turns"
    """`turns` (all fixed turns sent), `user_stop` (the simulated customer was done),
    `max_turns`, `handoff` (handed to a human) or `error`."""
    skipped_turns: int = 0
    """Fixed turns not sent because the conversation ended first (handoff, error)."""
    state: dict[str, Any] | None = None
    """The environment's final state."""

    @property
    def handed_off(self) -> bool:
        """Whether any turn handed the conversation off."""
        return any(t.handoff for t in self.turns)

    @property
    def replies(self) -> list[Reply]:
        """Every reply, in order."""
        return [r for t in self.turns for r in t.replies]

    @property
    def tool_calls(self) -> list[ToolUse]:
        """Every tool call, in order."""
        return [c for t in self.turns for c in t.tools]

    @property
    def input_tokens(self) -> int:
        """Model input tokens over the conversation."""
        return sum(t.input_tokens for t in self.turns)

    @property
    def output_tokens(self) -> int:
        """Model output tokens over the conversation."""
        return sum(t.output_tokens for t in self.turns)

    @property
    def seconds(self) -> float:
        """Time the bot took over all turns."""
        return sum(t.seconds for t in self.turns)

    def text(self, source: str | None = None) -> str:
        """Every reply's text (of one source), one per line."""
        return "\n".join(r.text for r in self.replies if source is None or r.source == source)

    def to_json(self) -> dict[str, Any]:
        """The conversation as JSON-ready data."""
        return dataclasses.asdict(self)


def passages_in(messages: list[Message]) -> list[Passage]:
    """The passages of the last retrieved context (`<context>` block) among `messages`."""
    for m in reversed(messages):
        text = m.content if isinstance(m, SystemMessage) else getattr(m, "text", "")
        if isinstance(m, SystemMessage | ToolMessage) and "<context>" in text:
            return [
                Passage(int(n), _source(label), body.strip())
                for n, label, body in _PASSAGE.findall(text)
            ]
    return []


def _source(label: str) -> str:
    # A label is `title (path/to/file.md, p. 3, Heading)`.
    where = label.rpartition(" (")[2].rstrip(")")
    return where.split(",")[0].rsplit("/", 1)[-1]


def arguments_of(raw: str) -> dict[str, Any]:
    """A call's JSON arguments as a dict (`{"_raw": text}` when they are not a JSON object)."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}
