"""Handoff triggers (asking for a person, sensitive topics), confirmation replies and ticket
summaries.

Money rules are not here: a refund over a limit is a rule on the facts a tool looks up
(`{if: facts.total > 2000, then: review}` in the tool registry), never digits read from the
customer's message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from glm_agent.serving.bot._config import HandoffConfig

__all__ = [
    "HandoffTrigger",
    "detect_handoff",
    "extractive_summary",
    "is_confirmation",
    "is_refusal",
]

_LATIN = re.compile(r"^[\x00-\x7f]+$")
_ID = re.compile(r"\b[A-Z]{1,4}-?\d{3,}\b")


@dataclass(frozen=True)
class HandoffTrigger:
    """Why a message goes to a human."""

    trigger: str
    """`customer_request` or `sensitive_topic`."""
    reason: str
    """A short human-readable reason (shown in the ticket)."""


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    # Latin phrases match as whole words ("agent" but not "agents' fees" or "reagent");
    # Chinese has no spaces, so CJK phrases match anywhere.
    if _LATIN.match(phrase):
        return re.compile(r"(?<![A-Za-z])" + re.escape(phrase) + r"(?![A-Za-z])", re.I)
    return re.compile(re.escape(phrase))


def detect_handoff(text: str, config: HandoffConfig) -> HandoffTrigger | None:
    """The handoff trigger a customer message hits, if any."""
    for phrase in config.request_phrases:
        if _phrase_pattern(phrase).search(text):
            return HandoffTrigger("customer_request", f"customer asked for a person ({phrase!r})")
    for pattern in config.sensitive_patterns:
        if re.search(pattern, text, re.I):
            return HandoffTrigger("sensitive_topic", f"sensitive topic ({pattern!r})")
    return None


def _normal(text: str) -> str:
    return re.sub(r"[\s!！。.,，~～]+", " ", text).strip().lower()


def is_confirmation(text: str, words: Sequence[str]) -> bool:
    """Whether `text` is an explicit yes (the whole reply is one of `words`, punctuation aside)."""
    return _normal(text) in {w.lower() for w in words}


def is_refusal(text: str, words: Sequence[str]) -> bool:
    """Whether `text` is an explicit no (the whole reply is one of `words`, punctuation aside)."""
    return _normal(text) in {w.lower() for w in words}


def extractive_summary(
    transcript: Sequence[tuple[str, str]], reason: str, *, max_lines: int = 6
) -> str:
    """A summary made of the conversation's own sentences: why it was handed off, the ids
    mentioned, the customer's first message and the last exchanges (role, text) pairs."""
    customer = [t for r, t in transcript if r == "customer"]
    ids = sorted({m for _, t in transcript for m in _ID.findall(t)})
    lines = [f"Handoff reason: {reason}."]
    if ids:
        lines.append("Ids mentioned: " + ", ".join(ids) + ".")
    if customer:
        lines.append(f"First request: {customer[0][:200]}")
    tail = [(r, t) for r, t in transcript[1:] if t][-(max_lines - len(lines)) :]
    lines += [f"{r}: {t[:200]}" for r, t in tail]
    return "\n".join(lines)
