"""`EvalReport`: a run's cases and scores, printed as tables, written as JSON and HTML, and
compared with an earlier report case by case."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glm_agent.exceptions import UserError

__all__ = ["CaseChange", "CaseOutcome", "Comparison", "EvalReport", "compare", "load_report"]

SCORE_LABELS = {
    "pass_rate": "pass rate",
    "resolution_rate": "resolution rate (passed, no handoff)",
    "reward": "reward (mean)",
    "handoff_precision": "handoff precision",
    "handoff_recall": "handoff recall",
    "curated_hit_rate": "curated-answer hit rate",
    "curated_false_rate": "curated answer where none was wanted",
    "citation_grounding": "citation grounding (mean)",
    "cited_answer_rate": "answers citing a passage",
    "policy_violations": "policy violations",
    "cases_with_violations": "conversations with a violation",
    "tokens_per_conversation": "tokens per conversation (mean)",
    "tokens_p95": "tokens per conversation (p95)",
    "seconds_per_conversation": "seconds per conversation (mean)",
    "seconds_p95": "seconds per conversation (p95)",
    "turn_seconds_p95": "seconds per turn (p95)",
}
"""The scores shown in tables, with their labels (the JSON has all of them)."""
_LOWER_IS_BETTER = {
    "curated_false_rate",
    "policy_violations",
    "cases_with_violations",
    "tokens_per_conversation",
    "tokens_p95",
    "seconds_per_conversation",
    "seconds_p95",
    "turn_seconds_p95",
}


@dataclass
class CaseOutcome:
    """One case's result."""

    id: str
    """The case id."""
    tags: list[str]
    """Its tags."""
    passed: bool
    """Every check passed (and the run did not fail)."""
    error: str | None
    """Why the run failed, when it did."""
    checks: dict[str, dict[str, Any]]
    """`{name: {passed, reason}}` of every check."""
    scores: dict[str, float]
    """Scores (`reward`, `grounding`, `policy_violations`...)."""
    metrics: dict[str, float]
    """Tokens, requests, turns, tool calls and seconds."""
    conversation: dict[str, Any] | None
    """The conversation (`Conversation.to_json()`)."""

    @property
    def failed_checks(self) -> list[str]:
        """Names of the checks that failed."""
        return [n for n, c in self.checks.items() if not c["passed"]]


@dataclass
class EvalReport:
    """The result of evaluating a dataset (see `run_eval`)."""

    dataset: str
    """The dataset's name."""
    settings: dict[str, Any]
    """How it ran: agent, target, models, concurrency, time, glm-agent version."""
    cases: list[CaseOutcome]
    """Every case, in dataset order."""
    scores: dict[str, Any]
    """Support scores over the run (see `support_scores`)."""
    rubrics_skipped: int = 0
    """Rubric checks not judged (no judge model)."""
    comparison: Comparison | None = None
    """Set by `compare_to`."""
    evaluation: Any = field(default=None, repr=False)
    """pydantic-evals' own `EvaluationReport` (not saved)."""

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (what `write_json` writes and `load_report` reads)."""
        return {
            "dataset": self.dataset,
            "settings": self.settings,
            "scores": self.scores,
            "rubrics_skipped": self.rubrics_skipped,
            "cases": [asdict(c) for c in self.cases],
            "comparison": asdict(self.comparison) if self.comparison else None,
        }

    def write_json(self, path: str | Path) -> Path:
        """Write the JSON report; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    def write_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML report; returns its path."""
        from glm_agent.evals._html import render_html

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(self.to_json()), encoding="utf-8")
        return path

    def compare_to(self, earlier: dict[str, Any]) -> Comparison:
        """Compare with an earlier report's JSON (kept in `comparison`)."""
        self.comparison = compare(earlier, self.to_json())
        return self.comparison

    def print(self, console: Any = None) -> None:
        """Print the per-case table (pydantic-evals'), the failed checks, the support scores and
        the comparison, if any."""
        from glm_agent.evals._console import print_report

        print_report(self, console)


@dataclass
class CaseChange:
    """How one case changed between two reports."""

    id: str
    """The case."""
    change: str
    """`better` (now passes), `worse` (now fails), `same`, `new` or `removed`."""
    fixed: list[str] = field(default_factory=list)
    """Checks that failed before and pass now."""
    broken: list[str] = field(default_factory=list)
    """Checks that passed before and fail now."""
    score_deltas: dict[str, float] = field(default_factory=dict)
    """Scores that moved: now minus before."""


@dataclass
class Comparison:
    """A report against an earlier one."""

    baseline: dict[str, Any]
    """The earlier report's settings."""
    cases: list[CaseChange]
    """Every case of either report."""
    score_deltas: dict[str, list[Any]]
    """`{score: [before, now]}` of the support scores that changed."""

    def count(self, change: str) -> int:
        """How many cases changed this way."""
        return sum(1 for c in self.cases if c.change == change)

    @property
    def regressions(self) -> list[CaseChange]:
        """Cases that got worse: now failing, or some check broke."""
        return [c for c in self.cases if c.change == "worse" or c.broken]


def _passed(checks: dict[str, Any]) -> set[str]:
    return {n for n, c in checks.items() if c["passed"]}


def compare(before: dict[str, Any], now: dict[str, Any]) -> Comparison:
    """Case-by-case changes from one report's JSON to another's."""
    old = {c["id"]: c for c in before.get("cases", [])}
    new = {c["id"]: c for c in now.get("cases", [])}
    changes: list[CaseChange] = []
    for cid in [*new, *(i for i in old if i not in new)]:
        if cid not in old:
            changes.append(CaseChange(cid, "new"))
            continue
        if cid not in new:
            changes.append(CaseChange(cid, "removed"))
            continue
        a, b = old[cid], new[cid]
        was, became = _passed(a["checks"]), _passed(b["checks"])
        failing_before = set(a["checks"]) - was
        failing_now = set(b["checks"]) - became
        fixed = sorted(failing_before & became)
        broken = sorted(was & failing_now)
        change = "same"
        if a["passed"] != b["passed"]:
            change = "better" if b["passed"] else "worse"
        deltas = {
            k: round(v - a["scores"][k], 4)
            for k, v in b["scores"].items()
            if k in a["scores"] and v != a["scores"][k]
        }
        changes.append(CaseChange(cid, change, fixed, broken, deltas))
    scores = {
        k: [before.get("scores", {}).get(k), v]
        for k, v in now.get("scores", {}).items()
        if before.get("scores", {}).get(k) != v
    }
    return Comparison(before.get("settings", {}), changes, scores)


def is_better(score: str, before: Any, now: Any) -> bool | None:
    """Whether a support score moved the right way (None: not comparable)."""
    if not isinstance(before, int | float) or not isinstance(now, int | float) or before == now:
        return None
    return (now < before) if score in _LOWER_IS_BETTER else (now > before)


def load_report(path: str | Path) -> dict[str, Any]:
    """An earlier JSON report, for `--compare`.

    Raises:
        UserError: the file is missing or is not a glm-agent eval report.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read the report {str(path)!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path} is not JSON ({e.msg}); give a report written by glm-agent eval"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise UserError(f"{path} is not a glm-agent eval report (no cases)")
    return data
