"""τ²-bench retail as an evaluation: the scripted ground truth scores 1.0 on every train task, and
scripted agents that break the rules in known ways score exactly as predicted from the golden
data (the database's final hash, required outputs, identification before customer data)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from glm_agent.evals import run_eval

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "examples" / "tau2-retail" / "evals" / "train.yaml"
DATA = ROOT.parent / "shared" / "data" / "tau2-retail"
AUTH = {"find_user_id_by_email", "find_user_id_by_name_zip"}
READS = AUTH | {
    "calculate",
    "get_item_details",
    "get_order_details",
    "get_product_details",
    "get_user_details",
    "list_all_product_types",
}
NEEDS_ID = {
    "get_order_details",
    "get_user_details",
    "cancel_pending_order",
    "exchange_delivered_order_items",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
}
SAMPLE = ["0", "2", "16", "19", "35", "37", "72", "104"]

pytestmark = pytest.mark.skipif(
    not (DATA / "tasks_train.json").exists(), reason="../shared/data/tau2-retail is not present"
)


def golden() -> tuple[list[dict[str, Any]], dict[str, Any], dict[tuple[str, int], bool]]:
    tasks = json.loads((DATA / "tasks_train.json").read_text())
    hashes = json.loads((DATA / "golden_train.json").read_text())
    errors = {}
    for line in (DATA / "golden_tool_outputs_train.jsonl").read_text().splitlines():
        row = json.loads(line)
        errors[(row["task_id"], row["index"])] = row["error"]
    return tasks, hashes, errors


def identify_broken(task: dict[str, Any], errors: dict[tuple[str, int], bool], keep: Any) -> bool:
    """Whether replaying the kept actions uses customer data before a successful identification."""
    for i, action in enumerate(task["evaluation_criteria"]["actions"]):
        if not keep(action["name"]):
            continue
        if action["name"] in AUTH and not errors[(task["id"], i)]:
            return False
        if action["name"] in NEEDS_ID:
            return True
    return False


def predicted(model: str) -> dict[str, tuple[float, int]]:
    """(reward, policy violations) each task must get with `model`, from the golden data."""
    tasks, hashes, errors = golden()
    initial = hashes["initial"]["final_db_sha256"]
    out = {}
    for t in tasks:
        outputs = bool(t["evaluation_criteria"]["communicate_info"])
        unchanged = hashes[t["id"]]["final_db_sha256"] == initial
        if model == "ground-truth":
            out[t["id"]] = (1.0, int(identify_broken(t, errors, lambda n: True)))
        elif model == "skips-writes":
            out[t["id"]] = (float(unchanged), int(identify_broken(t, errors, lambda n: n in READS)))
        elif model == "silent":
            out[t["id"]] = (float(not outputs), int(identify_broken(t, errors, lambda n: True)))
        else:  # no-auth
            out[t["id"]] = (1.0, int(identify_broken(t, errors, lambda n: n not in AUTH)))
    return out


def scored(model: str, task_ids: list[str] | None = None) -> dict[str, tuple[float, int]]:
    cases = [f"task-{i}" for i in task_ids] if task_ids else ()
    report = asyncio.run(run_eval(DATASET, model=model, cases=cases, concurrency=4))
    return {
        c.id.removeprefix("task-"): (c.scores["reward"], int(c.scores["policy_violations"]))
        for c in report.cases
    }


def test_ground_truth_and_a_silent_agent_on_a_sample() -> None:
    want = predicted("ground-truth")
    assert scored("ground-truth", SAMPLE) == {t: want[t] for t in SAMPLE}
    want = predicted("silent")
    got = scored("silent", SAMPLE)
    assert got == {t: want[t] for t in SAMPLE}
    assert {r for r, _ in got.values()} == {0.0, 1.0}  # the sample has tasks of both kinds


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ground-truth", "skips-writes", "silent", "no-auth"])
def test_every_train_task_scores_as_predicted(model: str) -> None:
    want = predicted(model)
    got = scored(model)
    assert len(got) == len(want) == 74
    assert got == want
    if model == "ground-truth":
        assert all(reward == 1.0 for reward, _ in got.values())
    if model == "skips-writes":
        assert sum(r for r, _ in got.values()) == 7  # the tasks whose database does not change
    if model == "silent":
        assert sum(r for r, _ in got.values()) == 49  # the tasks with no required output
