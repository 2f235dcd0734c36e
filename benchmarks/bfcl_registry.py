"""BFCL v4 function definitions as tool registries: conversion, ground truth, mutations.

Every function definition in ../shared/data/bfcl/BFCL_v4_*.json is converted with
`glm_agent.tools.registry_from_bfcl`; every ground-truth call in possible_answer/ is validated by
the registry; each ground-truth call is then mutated (wrong type, missing required argument,
unknown argument, enum violation) and must be rejected with a message naming the argument.

Baseline, measured in the same run: the plain conversion of conformance README §6 validated as it
stands with jsonschema (no `additionalProperties: false`), i.e. what one gets by validating the
rendered tool schema directly.

Run: .venv/bin/python benchmarks/bfcl_registry.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from glm_agent.exceptions import ToolArgumentsError
from glm_agent.tools import (
    bfcl_ground_truth,
    json_schema_validator,
    mutate_arguments,
    registry_from_bfcl,
)

ROOT = Path(__file__).resolve().parents[1]
BFCL = ROOT.parent / "shared" / "data" / "bfcl"
OUT = ROOT / "benchmarks" / "results" / "bfcl_registry.json"
KINDS = ["wrong_type", "missing_required", "unknown_argument", "enum_violation"]


def reason(error: str) -> str:
    """A rejection message reduced to its kind."""
    for needle, kind in [
        ("is not valid under any of", "value neither of the schema nor its default"),
        ("is not one of", "enum"),
        ("is not of type", "type"),
        ("missing required", "missing required argument"),
        ("unexpected argument", "unknown argument"),
        ("unknown function", "unknown function"),
    ]:
        if needle in error:
            return kind
    return re.sub(r"'[^']*'", "'…'", error)[:80]


def main() -> int:
    if not BFCL.is_dir():
        print(f"skipped: {BFCL} not found")
        return 0
    t0 = time.perf_counter()
    conv: Counter[str] = Counter()
    unconvertible: Counter[str] = Counter()
    gt: dict[str, Counter[str]] = {"ours": Counter(), "baseline": Counter()}
    gt_reasons: Counter[str] = Counter()
    gt_examples: list[str] = []
    mut: dict[str, dict[str, Counter[str]]] = {
        "ours": {k: Counter() for k in KINDS},
        "baseline": {k: Counter() for k in KINDS},
    }
    for path in sorted(BFCL.glob("BFCL_v4_*.json")):
        answers_path = BFCL / "possible_answer" / path.name
        answers: dict[str, Any] = {}
        if answers_path.is_file():
            for line in answers_path.read_text().splitlines():
                rec = json.loads(line)
                answers[rec["id"]] = rec["ground_truth"]
        for line in path.read_text().splitlines():
            q = json.loads(line)
            reg = registry_from_bfcl(q["function"], strict=False)
            conv["converted"] += len(reg)
            conv["unconvertible"] += len(reg.skipped)
            unconvertible.update(reason_of_skip(r) for r in reg.skipped.values())
            baseline = {t.name: json_schema_validator(t.definition.parameters, t.name) for t in reg}
            for call in answers.get(q["id"], []):
                for fname, allowed in call.items():
                    tname = fname.replace(".", reg.bfcl_names.sep)
                    args = bfcl_ground_truth(allowed)
                    if tname not in reg:
                        gt["ours"]["rejected"] += 1
                        gt_reasons["unknown function"] += 1
                        continue
                    tool = reg.get(tname)
                    try:
                        baseline[tname](args)
                        gt["baseline"]["accepted"] += 1
                    except ToolArgumentsError:
                        gt["baseline"]["rejected"] += 1
                    try:
                        tool.validate(args)
                        gt["ours"]["accepted"] += 1
                    except ToolArgumentsError as e:
                        gt["ours"]["rejected"] += 1
                        gt_reasons[reason(str(e))] += 1
                        if len(gt_examples) < 8:
                            gt_examples.append(f"{q['id']}: {e}"[:200])
                        continue
                    params = tool.definition.parameters
                    for kind, (bad, arg) in mutate_arguments(params, args).items():
                        for who, check in (("ours", tool.validate), ("baseline", baseline[tname])):
                            m = mut[who][kind]
                            m["applied"] += 1
                            try:
                                check(bad)
                            except ToolArgumentsError as e:
                                m["rejected"] += 1
                                m["named"] += arg in str(e)
    seconds = time.perf_counter() - t0

    print("## BFCL v4 → tool registries\n")
    print("| definitions | count |\n| --- | --- |")
    print(f"| converted | {conv['converted']} |\n| unconvertible | {conv['unconvertible']} |")
    for r, n in unconvertible.most_common():
        print(f"| · unconvertible: {r} | {n} |")
    print("\n| ground-truth calls | ours | baseline (§6 schema as is) |\n| --- | --- | --- |")
    print(f"| accepted | {gt['ours']['accepted']} | {gt['baseline']['accepted']} |")
    print(f"| rejected | {gt['ours']['rejected']} | {gt['baseline']['rejected']} |")
    for r, n in gt_reasons.most_common():
        print(f"| · rejected: {r} | {n} | |")
    print(
        "\n| mutation | applied | rejected (ours) | named the argument (ours) | rejected (baseline) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for k in KINDS:
        o, b = mut["ours"][k], mut["baseline"][k]
        print(f"| {k} | {o['applied']} | {o['rejected']} | {o['named']} | {b['rejected']} |")
    print(f"\n{seconds:.1f} s")
    for ex in gt_examples:
        print("example rejection:", ex)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "definitions": dict(conv),
                "unconvertible_reasons": dict(unconvertible),
                "ground_truth": {k: dict(v) for k, v in gt.items()},
                "ground_truth_rejections": dict(gt_reasons),
                "mutations": {w: {k: dict(c) for k, c in m.items()} for w, m in mut.items()},
                "seconds": round(seconds, 2),
            },
            indent=2,
        )
    )
    return 0


def reason_of_skip(message: str) -> str:
    """An unconvertible definition's reason, reduced to its kind."""
    if "both map to" in message:
        return "name collision after '.' → '_'"
    if "allow only" in message:
        return "invalid tool name"
    if "unknown type" in message:
        return "unknown type"
    return message[:80]


if __name__ == "__main__":
    sys.exit(main())
