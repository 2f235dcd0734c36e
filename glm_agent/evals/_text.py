"""Text measures of the checks: citation numbers, grounding, τ²-bench's output matching."""

from __future__ import annotations

import re
from collections.abc import Iterable

from glm_agent.serving.bot.curated import text_features

__all__ = ["cited_numbers", "contains_output", "grounding", "informative_features"]

_CITE = re.compile(r"\[(\d+)\]")


def cited_numbers(text: str) -> set[int]:
    """The passage numbers a reply cites as [n]."""
    return {int(n) for n in _CITE.findall(text)}


def informative_features(text: str) -> set[str]:
    """Words (Latin) and character pairs (Chinese) of `text`, the units grounding counts."""
    return {f for f in text_features(_CITE.sub(" ", text)) if len(f) == 2 or f.startswith("w:")}


def grounding(answer: str, passages: Iterable[str]) -> float:
    """Share of the answer's words / character pairs found in the passages it cites (1.0 for an
    answer made only of passage text; 0.0 when the passages share nothing with it)."""
    words = informative_features(answer)
    if not words:
        return 0.0
    support: set[str] = set()
    for p in passages:
        support |= informative_features(p)
    return len(words & support) / len(words)


def contains_output(text: str, output: str) -> bool:
    """τ²-bench's `communicate_info` rule: `output` occurs in `text`, compared without case and
    with the commas of `text` removed (`1,126.04` says `1126.04`)."""
    return output.lower() in text.lower().replace(",", "")
