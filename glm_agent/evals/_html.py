"""The HTML report: one self-contained page (no scripts, no external files) with the support
scores, the comparison with an earlier report, and every case with its checks and transcript."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from glm_agent.evals._console import format_score
from glm_agent.evals._report import SCORE_LABELS, is_better

__all__ = ["render_html"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; }
.pass { color: #17752b; } .fail { color: #b3261e; font-weight: 600; }
.better { background: #e6f4ea; } .worse { background: #fce8e6; }
details { margin: .4em 0; } summary { cursor: pointer; }
.turn { margin: .3em 0 .8em 1em; } .who { color: #666; font-size: .9em; }
.tool { font-family: ui-monospace, monospace; font-size: .85em; color: #5f3dc4; }
pre { white-space: pre-wrap; margin: .2em 0; }
"""


def _e(value: Any) -> str:
    return escape(str(value))


def _scores(report: dict[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(label)}</td>"
        f"<td class=num>{_e(format_score(k, report['scores'][k]))}</td></tr>"
        for k, label in SCORE_LABELS.items()
        if report["scores"].get(k) is not None
    ]
    s = report["scores"]
    rows.append(f"<tr><td>cases passed</td><td class=num>{s['passed']} / {s['cases']}</td></tr>")
    if report.get("rubrics_skipped"):
        rows.append(
            f"<tr><td>rubric checks not judged (no judge)</td>"
            f"<td class=num>{report['rubrics_skipped']}</td></tr>"
        )
    return "<table><tr><th>score</th><th>value</th></tr>" + "".join(rows) + "</table>"


def _comparison(report: dict[str, Any]) -> str:
    comparison = report.get("comparison")
    if not comparison:
        return ""
    counts: dict[str, int] = {}
    for c in comparison["cases"]:
        counts[c["change"]] = counts.get(c["change"], 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    rows = []
    for c in comparison["cases"]:
        if c["change"] == "same" and not (c["fixed"] or c["broken"] or c["score_deltas"]):
            continue
        deltas = ", ".join(f"{k} {v:+g}" for k, v in c["score_deltas"].items())
        rows.append(
            f"<tr class={_e(c['change'])}><td>{_e(c['id'])}</td><td>{_e(c['change'])}</td>"
            f"<td>{_e(', '.join(c['fixed']))}</td><td>{_e(', '.join(c['broken']))}</td>"
            f"<td>{_e(deltas)}</td></tr>"
        )
    moved = []
    for key, (before, now) in comparison["score_deltas"].items():
        if key in SCORE_LABELS:
            better = is_better(key, before, now)
            cls = {True: "better", False: "worse", None: ""}[better]
            moved.append(
                f"<tr class='{cls}'><td>{_e(SCORE_LABELS[key])}</td>"
                f"<td class=num>{_e(format_score(key, before))}</td>"
                f"<td class=num>{_e(format_score(key, now))}</td></tr>"
            )
    head = "".join(
        f"<th>{h}</th>" for h in ("case", "change", "checks fixed", "checks broken", "scores")
    )
    head = f"<tr>{head}</tr>"
    html = f"<h2>Against the earlier report</h2><p>{_e(summary)}</p>"
    if rows:
        html += "<table>" + head + "".join(rows) + "</table>"
    if moved:
        html += (
            "<table><tr><th>score</th><th>before</th><th>now</th></tr>"
            + "".join(moved)
            + "</table>"
        )
    return html


def _transcript(conversation: dict[str, Any] | None) -> str:
    if not conversation:
        return ""
    parts = []
    for i, turn in enumerate(conversation["turns"], 1):
        lines = [f"<div class=who>customer ({i})</div><pre>{_e(turn['customer'])}</pre>"]
        for call in turn["tools"]:
            args = json.dumps(call["arguments"], ensure_ascii=False)
            mark = " ✔ confirmed" if call["confirmed"] else ""
            lines.append(
                f"<div class=tool>{_e(call['name'])}({_e(args)}) → {_e(call['status'])}{mark}</div>"
            )
        for reply in turn["replies"]:
            cites = ", ".join(str(c.get("source", "")) for c in reply["citations"])
            extra = f" · cites {cites}" if cites else ""
            lines.append(
                f"<div class=who>{_e(reply['source'])}{_e(extra)}</div>"
                f"<pre>{_e(reply['text'])}</pre>"
            )
        if turn["handoff"]:
            lines.append(f"<div class=fail>handed off ({_e(turn['handoff_trigger'])})</div>")
        if turn["error"]:
            lines.append(f"<div class=fail>error: {_e(turn['error'])}</div>")
        lines.append(
            f"<div class=who>{turn['input_tokens']}+{turn['output_tokens']} tokens, "
            f"{turn['seconds']:.2f} s</div>"
        )
        parts.append("<div class=turn>" + "".join(lines) + "</div>")
    return "".join(parts)


def _case(case: dict[str, Any]) -> str:
    status = "<span class=pass>pass</span>" if case["passed"] else "<span class=fail>fail</span>"
    checks = "".join(
        f"<tr><td>{_e(name)}</td><td class={'pass' if c['passed'] else 'fail'}>"
        f"{'✔' if c['passed'] else '✘'}</td><td>{_e(c['reason'])}</td></tr>"
        for name, c in case["checks"].items()
    )
    scores = ", ".join(f"{k} {v:g}" for k, v in case["scores"].items())
    metrics = ", ".join(f"{k} {v:g}" for k, v in case["metrics"].items())
    error = f"<p class=fail>run failed: {_e(case['error'])}</p>" if case["error"] else ""
    tags = f" <span class=who>[{_e(', '.join(case['tags']))}]</span>" if case["tags"] else ""
    return (
        f"<details{' open' if not case['passed'] else ''}><summary>{status} {_e(case['id'])}{tags}"
        f"</summary>{error}<table><tr><th>check</th><th></th><th>why</th></tr>{checks}</table>"
        f"<p class=who>scores: {_e(scores) or '-'} · {_e(metrics)}</p>"
        f"{_transcript(case['conversation'])}</details>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The HTML page of a report's JSON (`EvalReport.to_json()`)."""
    settings = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in report["settings"].items()
    )
    cases = "".join(_case(c) for c in report["cases"])
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>glm-agent eval: {_e(report['dataset'])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>glm-agent eval: {_e(report['dataset'])}</h1><table>{settings}</table>"
        f"<h2>Support scores</h2>{_scores(report)}{_comparison(report)}"
        f"<h2>Cases</h2>{cases}</body></html>\n"
    )
