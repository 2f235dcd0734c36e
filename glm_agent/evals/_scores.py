"""Support scores over a run: handoff precision / recall, curated-answer hit rate, citation
grounding, policy violations, resolution rate, tokens and latency per conversation."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from glm_agent.evals._dataset import CaseSpec
from glm_agent.evals._text import grounding
from glm_agent.evals._transcript import Conversation

__all__ = ["CaseFacts", "support_scores"]


@dataclass
class CaseFacts:
    """What the scores need of one case."""

    case: CaseSpec
    """The case."""
    conversation: Conversation | None
    """What happened (None: the run failed before a conversation)."""
    passed: bool
    """Every check passed."""
    violations: int
    """Policy rules broken."""
    reward: float | None
    """The case's reward, when the dataset defines one."""


def _expected_handoff(case: CaseSpec) -> bool | None:
    if case.expect.handoff is not None:
        return case.expect.handoff
    turns = [
        t.expect.handoff for t in case.fixed_turns() if t.expect and t.expect.handoff is not None
    ]
    if not turns:
        return None
    return any(turns)


def _ratio(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _curated(facts: Sequence[CaseFacts]) -> tuple[int, int, int, int]:
    """(turns expecting a curated answer, of them answered curated, turns expecting none, of
    them answered curated)."""
    want = hit = avoid = false = 0
    for f in facts:
        if f.conversation is None:
            continue
        turns = f.case.fixed_turns()
        for i, result in enumerate(f.conversation.turns):
            expected = f.case.expect.curated
            turn_expect = turns[i].expect if i < len(turns) else None
            if turn_expect is not None and turn_expect.curated is not None:
                expected = turn_expect.curated
            if expected is None:
                continue
            curated = any(r.source == "curated" for r in result.replies)
            if expected:
                want, hit = want + 1, hit + curated
            else:
                avoid, false = avoid + 1, false + curated
    return want, hit, avoid, false


def support_scores(facts: Sequence[CaseFacts]) -> dict[str, Any]:
    """The scores of a run, by name (a rate is None when nothing was there to measure)."""
    tp = fp = fn = 0
    for f in facts:
        expected = _expected_handoff(f.case)
        if expected is None:
            continue
        actual = f.conversation.handed_off if f.conversation is not None else False
        tp, fp, fn = (
            tp + (expected and actual),
            fp + (actual and not expected),
            fn + (expected and not actual),
        )
    want, hit, avoid, false = _curated(facts)
    grounded: list[float] = []
    answers = 0
    for f in facts:
        for turn in f.conversation.turns if f.conversation else []:
            for reply in turn.replies:
                if reply.source != "model":
                    continue
                answers += 1
                numbers = {int(c["n"]) for c in reply.citations if "n" in c}
                cited = [p.text for p in turn.passages if p.n in numbers]
                if cited:
                    grounded.append(grounding(reply.text, cited))
    convs = [f.conversation for f in facts if f.conversation is not None]
    tokens = [float(c.input_tokens + c.output_tokens) for c in convs]
    seconds = [c.seconds for c in convs]
    turn_seconds = [t.seconds for c in convs for t in c.turns]
    resolved = sum(
        1 for f in facts if f.passed and f.conversation and not f.conversation.handed_off
    )
    rewards = [f.reward for f in facts if f.reward is not None]
    return {
        "cases": len(facts),
        "passed": sum(f.passed for f in facts),
        "pass_rate": _ratio(sum(f.passed for f in facts), len(facts)),
        "handoff_precision": _ratio(tp, tp + fp),
        "handoff_recall": _ratio(tp, tp + fn),
        "curated_hit_rate": _ratio(hit, want),
        "curated_false_rate": _ratio(false, avoid),
        "citation_grounding": round(statistics.fmean(grounded), 4) if grounded else None,
        "cited_answer_rate": _ratio(len(grounded), answers),
        "policy_violations": sum(f.violations for f in facts),
        "cases_with_violations": sum(1 for f in facts if f.violations),
        "resolution_rate": _ratio(resolved, len(facts)),
        "reward": round(statistics.fmean(rewards), 4) if rewards else None,
        "tokens_per_conversation": round(statistics.fmean(tokens), 1) if tokens else None,
        "input_tokens_per_conversation": (
            round(statistics.fmean(c.input_tokens for c in convs), 1) if convs else None
        ),
        "output_tokens_per_conversation": (
            round(statistics.fmean(c.output_tokens for c in convs), 1) if convs else None
        ),
        "tokens_p95": _quantile(tokens, 0.95),
        "seconds_per_conversation": round(statistics.fmean(seconds), 4) if seconds else None,
        "seconds_p50": _quantile(seconds, 0.5),
        "seconds_p95": _quantile(seconds, 0.95),
        "turn_seconds_p95": _quantile(turn_seconds, 0.95),
    }
