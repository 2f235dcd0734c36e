"""Replay tau2-bench retail tasks' ground-truth actions through the glm-agent loop.

For each task, a `FunctionModel` emits the task's actions as tool calls, one per turn, and the
calls go through the same validation and execution path as a real model's; the tools run on a
fresh copy of `db.json`. Reports how many final-DB hashes match the golden ones and how many
tool outputs match the golden tool outputs byte for byte.

    python benchmarks/tau2_retail_replay.py \\
        --tasks ../shared/data/tau2-retail/tasks_train.json \\
        --golden ../shared/data/tau2-retail/golden_train.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tau2-retail"
DATA = ROOT.parent / "shared" / "data" / "tau2-retail"

sys.path.insert(0, str(EXAMPLE))

from retail_tools import RetailDB  # noqa: E402

from glm_agent import Agent, AgentInfo, AssistantMessage, FunctionModel, Message, ToolCall  # noqa: E402
from glm_agent.messages import ToolMessage  # noqa: E402
from glm_agent.tools import ToolRegistry  # noqa: E402


def load_registry() -> ToolRegistry:
    """The retail tools as declared in the example's YAML registry."""
    from glm_agent.tools import load_registry as load_yaml_registry

    return load_yaml_registry(EXAMPLE / "tools.yaml")


@dataclass
class TaskReplay:
    """What one task's replay produced."""

    task_id: str
    final_hash: str
    outputs: list[tuple[str, bool]] = field(default_factory=list)


def replay_task(task: dict[str, Any], db: RetailDB, registry: ToolRegistry) -> TaskReplay:
    """Run one task's actions through an agent whose model emits them as tool calls."""
    actions = task["evaluation_criteria"]["actions"]

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        done = sum(isinstance(m, ToolMessage) for m in messages)
        if done < len(actions):
            a = actions[done]
            call = ToolCall(
                id=a.get("action_id") or f"a{done}",
                name=a["name"],
                arguments=json.dumps(a["arguments"]),
            )
            return AssistantMessage(tool_calls=(call,))
        return "All requested actions are done."

    # A failing action is reported and the replay carries on, as tau2's evaluator does. The
    # ground-truth actions were confirmed by the customer: the approval hook says yes.
    agent: Agent[str] = Agent(
        FunctionModel(model_fn),
        tools=registry,
        max_steps=len(actions) + 1,
        retries=len(actions) + 1,
        approval=lambda ctx, call, args: True,
    )
    result = agent.run("Replay the ground-truth actions.", deps=db)
    outputs = [(m.content, m.is_error) for m in result.messages if isinstance(m, ToolMessage)]
    return TaskReplay(task["id"], db.canonical_hash(), outputs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tasks", type=Path, default=DATA / "tasks_train.json")
    ap.add_argument("--golden", type=Path, default=DATA / "golden_train.json")
    ap.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="golden tool outputs (default: golden_tool_outputs_<split>.jsonl "
        "beside --golden, when present)",
    )
    ap.add_argument("--db", type=Path, default=None, help="db.json (default: beside --tasks)")
    ap.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "tau2_retail_replay.json"
    )
    args = ap.parse_args(argv)

    tasks = json.loads(args.tasks.read_text())
    golden = json.loads(args.golden.read_text())
    outputs_path = args.outputs or args.golden.with_name(
        args.golden.name.replace("golden_", "golden_tool_outputs_").replace(".json", ".jsonl")
    )
    golden_outputs: dict[tuple[str, int], dict[str, Any]] = {}
    if outputs_path.exists():
        for line in outputs_path.read_text().splitlines():
            row = json.loads(line)
            golden_outputs[(row["task_id"], row["index"])] = row
    base = RetailDB.load(args.db or args.tasks.with_name("db.json"))
    initial = golden.get("initial", {}).get("final_db_sha256")
    if initial is not None and base.canonical_hash() != initial:
        print(f"warning: the initial DB hash {base.canonical_hash()} != golden {initial}")
    registry = load_registry()

    start = time.perf_counter()
    hash_ok = outputs_ok = outputs_total = 0
    failures: list[str] = []
    for task in tasks:
        replay = replay_task(task, base.copy(), registry)
        expected = golden[task["id"]]["final_db_sha256"]
        if replay.final_hash == expected:
            hash_ok += 1
        else:
            failures.append(f"task {task['id']}: final DB hash differs")
        for i, (content, is_error) in enumerate(replay.outputs):
            row = golden_outputs.get((task["id"], i))
            if row is None:
                continue
            outputs_total += 1
            if row["content"] == content and row["error"] == is_error:
                outputs_ok += 1
            else:
                failures.append(
                    f"task {task['id']} action {i} ({row['name']}): output differs: "
                    f"got {content[:120]!r}, want {row['content'][:120]!r}"
                )
    seconds = time.perf_counter() - start

    print(f"\ntau2-bench retail replay through the agent loop ({args.tasks.name})\n")
    print("| check | matching | total |")
    print("|---|---:|---:|")
    print(f"| final DB hash | {hash_ok} | {len(tasks)} |")
    print(f"| tool outputs (byte-exact, error flag) | {outputs_ok} | {outputs_total} |")
    print(f"\n{len(tasks)} tasks in {seconds:.1f} s")
    for line in failures[:20]:
        print("  -", line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "tasks": len(tasks),
                "hash_matching": hash_ok,
                "outputs_matching": outputs_ok,
                "outputs_total": outputs_total,
                "failures": failures,
                "seconds": seconds,
            },
            indent=2,
        )
    )
    return 0 if hash_ok == len(tasks) and outputs_ok == outputs_total else 1


if __name__ == "__main__":
    raise SystemExit(main())
