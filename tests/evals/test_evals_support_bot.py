"""The Bamboo Lane dataset through the real support bot (its support.yaml, curated answers,
knowledge base, store tools and offline model), from the Python API and `glm-agent eval`."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from glm_agent.cli import _mount_groups, app
from glm_agent.evals import EvalReport, load_dataset, run_eval

HANDOFF_CASES = {
    "handoff-request-zh",
    "handoff-real-person-zh",
    "handoff-request-en",
    "handoff-representative-en",
    "handoff-complaint-zh",
    "handoff-12315-zh",
    "handoff-lawyer-en",
    "handoff-after-failures-zh",
    "lookup-then-handoff-zh",
    "return-review-zh",
    "return-review-en",
}


@pytest.fixture(scope="module")
def report(bamboo: Path) -> EvalReport:
    before = os.environ.get("CS_STORE_DB")
    result = asyncio.run(run_eval(bamboo / "evals" / "support.yaml", concurrency=4))
    assert os.environ.get("CS_STORE_DB") == before  # the environment put the store back
    return result


def outcome(report: EvalReport, case_id: str) -> Any:
    return next(c for c in report.cases if c.id == case_id)


def test_every_case_passes_but_the_known_issues(report: EvalReport, bamboo: Path) -> None:
    dataset = load_dataset(bamboo / "evals" / "support.yaml")
    known = {c.id for c in dataset.cases if "known-issue" in c.tags}
    assert len(dataset.cases) >= 60 and len(known) == 3
    for lang in ("zh", "en"):
        assert sum(lang in c.tags for c in dataset.cases) >= 25
    assert {c.id for c in report.cases if not c.passed} == known
    assert all(c.error is None for c in report.cases)
    hours = outcome(report, "faq-service-hours-zh")
    assert sorted(hours.failed_checks) == ["contains", "curated", "handoff"]
    assert "customer_request" in hours.checks["handoff"]["reason"]


def test_what_the_bot_did_is_in_the_conversation(report: EvalReport) -> None:
    faq = outcome(report, "faq-shipping-cost-zh").conversation
    [reply] = faq["turns"][0]["replies"]
    assert reply["source"] == "curated" and reply["curated_id"] is not None
    assert faq["turns"][0]["tools"] == [] and faq["turns"][0]["input_tokens"] == 0

    # No order is shown before the customer is verified; then the asked-for lookup runs.
    asked, verified = outcome(report, "order-pending-zh").conversation["turns"]
    assert [(c["name"], c["arguments"], c["status"]) for c in asked["tools"]] == [
        ("lookup_order", {"order_id": "SO10001"}, "denied")
    ]
    assert [(c["name"], c["status"]) for c in verified["tools"]] == [
        ("verify_customer", "ok"),
        ("lookup_order", "ok"),
    ]
    assert verified["input_tokens"] > 0 and verified["requests"] == 3

    # Someone else's order and an order that does not exist read the same to the customer.
    for case_id in ("not-yours-zh", "order-unknown-en"):
        turn = outcome(report, case_id).conversation["turns"][1]
        assert [c["status"] for c in turn["tools"]] == ["denied"]

    review = outcome(report, "return-review-zh")
    assert review.conversation["turns"][1]["tools"][0]["status"] == "review"
    assert review.conversation["turns"][1]["handoff_trigger"] == "policy_review"
    cancelled = outcome(report, "cancel-yes-zh")
    assert cancelled.checks["state"]["passed"]
    assert [c["confirmed"] for c in cancelled.conversation["turns"][2]["tools"]] == [True]

    kb = outcome(report, "kb-warranty-en")
    turn = kb.conversation["turns"][0]
    assert turn["replies"][0]["citations"][0]["source"] == "warranty-guide.pdf"
    assert turn["passages"] and kb.scores["grounding"] >= 0.9

    handoff = outcome(report, "lookup-then-handoff-zh")
    assert handoff.conversation["ended"] == "handoff"
    assert handoff.conversation["turns"][3]["handoff_trigger"] == "customer_request"
    assert handoff.checks["handoff@4"]["passed"] and handoff.checks["curated@1"]["passed"]


def test_support_scores(report: EvalReport) -> None:
    s = report.scores
    # 11 conversations must hand off and do; one more (the service-hours question) does.
    assert s["handoff_recall"] == 1.0
    assert s["handoff_precision"] == round(11 / 12, 4)
    assert s["curated_false_rate"] == 0.0
    assert 0.85 <= s["curated_hit_rate"] < 1.0  # the delivery-fee and service-hours misses
    assert s["policy_violations"] == 0
    assert s["citation_grounding"] is not None and s["citation_grounding"] > 0.9
    handed = {
        c.id for c in report.cases if c.conversation and c.conversation["turns"][-1]["handoff"]
    }
    assert handed == HANDOFF_CASES | {"faq-service-hours-zh"}
    resolved = [c for c in report.cases if c.passed and c.id not in HANDOFF_CASES]
    assert s["resolution_rate"] == round(len(resolved) / len(report.cases), 4)
    assert s["tokens_per_conversation"] > 0 and s["seconds_p95"] >= s["seconds_p50"]


def test_reports_and_comparison_through_the_cli(
    report: EvalReport, bamboo: Path, tmp_path: Path
) -> None:
    """`glm-agent eval` writes JSON and HTML; with the invoice answers taken out of the curated
    set, `--compare` against the earlier report shows those cases getting worse, and `--strict`
    fails."""
    earlier = report.write_json(tmp_path / "before.json")
    html = report.write_html(tmp_path / "before.html").read_text(encoding="utf-8")
    assert "faq-shipping-cost-zh" in html and "<script" not in html
    assert "&lt;" not in html or "<pre>" in html
    curated = bamboo / "curated.yaml"
    original = curated.read_text(encoding="utf-8")
    kept = original.split("  - question: 可以开发票吗？")[0]
    assert "invoice" not in kept and kept.count("question:") == 7
    curated.write_text(kept, encoding="utf-8")
    try:
        _mount_groups()
        result = CliRunner().invoke(
            app,
            [
                "eval",
                str(bamboo / "evals" / "support.yaml"),
                "--tag",
                "faq",
                "--out",
                str(tmp_path / "out"),
                "--compare",
                str(earlier),
                "--no-progress",
                "--strict",
            ],
        )
    finally:
        curated.write_text(original, encoding="utf-8")
    assert result.exit_code == 1, result.output
    assert "Against the earlier report" in result.output
    [written] = (tmp_path / "out").glob("*.json")
    data = json.loads(written.read_text(encoding="utf-8"))
    changes = {c["id"]: c for c in data["comparison"]["cases"]}
    worse = {cid for cid, c in changes.items() if c["change"] == "worse"}
    assert worse == {"faq-invoice-zh", "faq-invoice-en", "faq-fapiao-en", "faq-then-order-en"}
    assert "curated" in changes["faq-invoice-en"]["broken"]
    assert "curated@4" in changes["faq-then-order-en"]["broken"]
    assert changes["faq-shipping-cost-zh"]["change"] == "same"
    assert changes["order-pending-zh"]["change"] == "removed"  # not selected this time
    assert [c["id"] for c in data["cases"]] == [
        c["id"] for c in data["cases"] if "faq" in c["tags"]
    ]
    assert (tmp_path / "out" / written.name.replace(".json", ".html")).is_file()
