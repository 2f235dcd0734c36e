"""Handoff triggers (asking for a person, sensitive topics, large refunds) and ticket summaries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from glm_agent.serving.bot._config import HandoffConfig

__all__ = ["HandoffTrigger", "detect_handoff", "extractive_summary", "is_confirmation"]

_LATIN = re.compile(r"^[\x00-\x7f]+$")
_AMOUNT = re.compile(r"(?:¥|￥|rmb|cny|\$)?\s*(\d+(?:\.\d+)?)\s*(?:元|块|rmb|cny|yuan)?", re.I)
_REFUND = re.compile(r"refund|退款|退钱", re.I)
_ID = re.compile(r"\b[A-Z]{1,4}-?\d{3,}\b")


@dataclass(frozen=True)
class HandoffTrigger:
    """Why a message goes to a human."""

    trigger: str
    """`customer_request`, `sensitive_topic` or `refund_over_limit`."""
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
    if config.refund_over is not None and _REFUND.search(text):
        amounts = [float(m.group(1)) for m in _AMOUNT.finditer(text) if m.group(1)]
        over = [a for a in amounts if a > config.refund_over]
        if over:
            return HandoffTrigger(
                "refund_over_limit", f"refund of {max(over):g} over {config.refund_over:g}"
            )
    return None


def is_confirmation(text: str, words: Sequence[str]) -> bool:
    """Whether `text` is an explicit yes (the whole reply is one of `words`, punctuation aside)."""
    norm = re.sub(r"[\s!！。.,，~～]+", " ", text).strip().lower()
    return norm in {w.lower() for w in words}


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
