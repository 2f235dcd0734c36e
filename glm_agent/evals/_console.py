"""A report in the terminal: pydantic-evals' case table, failed checks, support scores and the
comparison with an earlier report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from glm_agent.evals._report import SCORE_LABELS, is_better

if TYPE_CHECKING:
    from glm_agent.evals._report import EvalReport

__all__ = ["format_score", "print_report"]


def format_score(name: str, value: Any) -> str:
    """A score as shown in tables."""
    if value is None:
        return "-"
    if name.endswith("_rate") or name in ("reward", "citation_grounding"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def print_report(report: EvalReport, console: Console | None = None) -> None:
    """Print `report` (see `EvalReport.print`)."""
    console = console or Console()
    if report.evaluation is not None:
        report.evaluation.print(console=console, include_averages=True)
    failed = [(c.id, n, c.checks[n]["reason"]) for c in report.cases for n in c.failed_checks]
    errors = [(c.id, "run", c.error) for c in report.cases if c.error]
    if failed or errors:
        table = Table(title="Failed checks", show_lines=False)
        for column in ("case", "check", "why"):
            table.add_column(column, overflow="fold")
        for case, name, why in [*errors, *failed]:
            table.add_row(case, name, str(why))
        console.print(table)
    scores = Table(title=f"Support scores: {report.dataset}")
    scores.add_column("score")
    scores.add_column("value", justify="right")
    for key, label in SCORE_LABELS.items():
        value = report.scores.get(key)
        if value is not None:
            scores.add_row(label, format_score(key, value))
    scores.add_row("cases passed", f"{report.scores['passed']} / {report.scores['cases']}")
    if report.rubrics_skipped:
        scores.add_row("rubric checks not judged (no --judge)", str(report.rubrics_skipped))
    console.print(scores)
    if report.comparison is not None:
        _print_comparison(report, console)


def _print_comparison(report: EvalReport, console: Console) -> None:
    comparison = report.comparison
    assert comparison is not None
    counts = {k: comparison.count(k) for k in ("better", "worse", "same", "new", "removed")}
    table = Table(
        title="Against the earlier report: " + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    for column in ("case", "change", "checks fixed", "checks broken", "scores"):
        table.add_column(column, overflow="fold")
    for c in comparison.cases:
        if c.change == "same" and not c.fixed and not c.broken and not c.score_deltas:
            continue
        deltas = ", ".join(f"{k} {v:+g}" for k, v in c.score_deltas.items())
        style = {"better": "green", "worse": "red"}.get(c.change)
        table.add_row(c.id, c.change, ", ".join(c.fixed), ", ".join(c.broken), deltas, style=style)
    console.print(table)
    if comparison.score_deltas:
        moved = Table(title="Support scores, before → now")
        for column in ("score", "before", "now", ""):
            moved.add_column(column)
        for key, (before, now) in comparison.score_deltas.items():
            if key not in SCORE_LABELS:
                continue
            better = is_better(key, before, now)
            mark = {True: "better", False: "worse", None: ""}[better]
            moved.add_row(
                SCORE_LABELS[key], format_score(key, before), format_score(key, now), mark
            )
        console.print(moved)
