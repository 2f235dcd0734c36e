"""τ²-bench retail as a glm-agent evaluation: the train tasks as cases, the database as the
environment, and a scripted customer for running without a model.

The task files are τ²-bench's own, read from `$TAU2_DATA` or `../shared/data/tau2-retail`
(they are not copied into the repository). Each task becomes a case whose customer follows the
task's user scenario, and whose checks are τ²-bench's reward: the database's final state (its
canonical hash must be the golden one) and the required outputs (`communicate_info`: values the
agent must tell the customer). The task's natural-language assertions become a rubric, judged
only when a judge model is given.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from glm_agent import AgentInfo, AssistantMessage, Message, UserMessage
from glm_agent.evals import current_case
from glm_agent.exceptions import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1]
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from retail_tools import RetailDB  # noqa: E402

STOP = "###STOP###"


def data_dir() -> Path:
    """Where τ²-bench's retail files are (`$TAU2_DATA`, else ../shared/data/tau2-retail)."""
    folder = Path(os.environ.get("TAU2_DATA") or EXAMPLE.parents[2] / "shared/data/tau2-retail")
    if not (folder / "tasks_train.json").is_file():
        raise ConfigError(
            f"no τ²-bench retail data in {folder}: set TAU2_DATA to the folder holding "
            "tasks_train.json, golden_train.json and db.json"
        )
    return folder


def scenario(task: dict[str, Any]) -> str:
    """The customer's instructions of a task, as the simulated customer reads them."""
    info = task["user_scenario"]["instructions"]
    parts = [info.get("reason_for_call"), info.get("known_info"), info.get("unknown_info")]
    parts.append(info.get("task_instructions"))
    return "\n".join(p for p in parts if p)


def train_cases(dataset_dir: Path) -> list[dict[str, Any]]:
    """Every train task as a case (see the module docstring)."""
    folder = data_dir()
    tasks = json.loads((folder / "tasks_train.json").read_text(encoding="utf-8"))
    golden = json.loads((folder / "golden_train.json").read_text(encoding="utf-8"))
    cases = []
    for task in tasks:
        criteria = task["evaluation_criteria"]
        info = task["user_scenario"]["instructions"]
        expect: dict[str, Any] = {
            "state": {"db_hash": golden[task["id"]]["final_db_sha256"]},
            "outputs": list(criteria.get("communicate_info") or []),
        }
        if criteria.get("nl_assertions"):
            expect["rubric"] = "\n".join(f"- {a}" for a in criteria["nl_assertions"])
        cases.append(
            {
                "id": f"task-{task['id']}",
                "tags": ["tau2", "retail", "train"],
                "locale": "en",
                "user": {"scenario": scenario(task)},
                "expect": expect,
                "metadata": {
                    "task_id": task["id"],
                    "actions": criteria["actions"],
                    "outputs": list(criteria.get("communicate_info") or []),
                    "opening": " ".join(
                        p for p in (info.get("reason_for_call"), info.get("known_info")) if p
                    ),
                },
            }
        )
    return cases


class RetailEnvironment:
    """A fresh copy of the retail database for every case (handed to the tools as deps), and
    its canonical hash as the final state."""

    def __init__(self, dataset_dir: Path) -> None:
        self.text = (data_dir() / "db.json").read_text(encoding="utf-8")

    def deps(self, case: Any) -> RetailDB:
        """A fresh database for the case."""
        return RetailDB(json.loads(self.text))

    def state(self, case: Any, deps: RetailDB) -> dict[str, Any]:
        """The database's canonical hash (τ²-bench's DB check compares it with the golden one)."""
        return {"db_hash": deps.canonical_hash()}


def scripted_user(messages: list[Message], info: AgentInfo) -> str:
    """A customer without a model: opens with the task's reason and known facts, says yes to a
    confirmation request, and otherwise ends the conversation. Enough for scripted agents; a
    model-driven agent needs a model-driven customer (`--user-model`)."""
    if not any(isinstance(m, AssistantMessage) for m in messages):
        return str(current_case().metadata["opening"])
    last = next((m.content for m in reversed(messages) if isinstance(m, UserMessage)), "")
    if last.startswith("Please confirm"):
        return "yes"
    return STOP
