"""Real traffic as regression tests: the support console's export (JSONL) turned into a dataset.

Each exported conversation becomes a case with the customer's messages as fixed turns, up to the
handoff when there was one (what humans said after it is not the bot's to repeat). What the bot
did becomes the expectations: the turn that handed off must hand off again, a curated answer
must stay curated and a model answer must not turn into one, order and product numbers the bot
told must be told again. Conversations the customer rated badly (CSAT 1-2, or marked unresolved)
are kept for their messages only and tagged `needs-review`: what the bot did there is no
standard. Ratings of 4-5 add a rubric (judged with `--judge`) holding new answers to the
recorded ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from glm_agent.exceptions import ConfigError

__all__ = ["dataset_from_export", "write_dataset"]

_ID = re.compile(r"\b(?:[A-Z]{1,3}-?\d{4,}|P-\d{3,})\b")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _turns(
    messages: list[dict[str, Any]], handed_off: bool
) -> tuple[list[dict[str, Any]], int | None]:
    """(turns as {text, replies}, index of the turn that handed off)."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "customer":
            turns.append({"text": str(m.get("text") or ""), "replies": []})
        elif role in ("system", "human"):
            # The handoff notice is the bot's first `system` message: humans took it from here.
            return turns, (len(turns) - 1 if handed_off and turns else None)
        elif role == "bot" and turns:
            turns[-1]["replies"].append(m)
    return turns, None


def _expect(replies: list[dict[str, Any]], customer: str) -> dict[str, Any]:
    sources = {r.get("source") for r in replies}
    expect: dict[str, Any] = {}
    if "curated" in sources:
        expect["curated"] = True
    elif "model" in sources:
        expect["curated"] = False
    said = " ".join(
        str(r.get("text") or "") for r in replies if r.get("source") in ("model", "curated")
    )
    ids = [i for i in dict.fromkeys(_ID.findall(said)) if "*" not in i]
    if ids:
        expect["contains"] = ids
    return expect


def _case(row: dict[str, Any]) -> dict[str, Any] | None:
    tags = dict(row.get("tags") or {})
    handed_off = bool(tags.get("handed_off"))
    turns, handoff_at = _turns(list(row.get("messages") or []), handed_off)
    turns = [t for t in turns if t["text"].strip()]
    if not turns:
        return None
    csat = tags.get("csat")
    bad = (csat is not None and float(csat) <= 2) or tags.get("resolution") == "unresolved"
    labels = ["from-export", str(row.get("channel") or "web")]
    if tags.get("intent"):
        labels.append(str(tags["intent"]))
    if bad:
        labels.append("needs-review")
    case: dict[str, Any] = {
        "id": f"conv-{row['conversation_id']}",
        "tags": labels,
        "locale": "zh" if any(_CJK.search(t["text"]) for t in turns) else "en",
        "turns": [],
        "expect": {"handoff": handed_off},
        "metadata": {
            "conversation_id": row["conversation_id"],
            "recorded": [[r.get("text") for r in t["replies"]] for t in turns],
            "csat": csat,
        },
    }
    for i, t in enumerate(turns):
        expect = {} if bad else _expect(t["replies"], t["text"])
        if handoff_at is not None and i == handoff_at:
            expect = {"handoff": True}
        case["turns"].append({"text": t["text"], "expect": expect} if expect else t["text"])
    if not bad and csat is not None and float(csat) >= 4:
        recorded = "\n".join(
            f"Customer: {t['text']}\nSupport: "
            + " / ".join(str(r.get("text")) for r in t["replies"])
            for t in turns
        )
        case["expect"]["rubric"] = (
            f"The support resolves each of the customer's requests at least as well as in this "
            f"recorded conversation, which the customer rated {csat}/5:\n{recorded}"
        )
    return case


def dataset_from_export(
    rows: Iterable[dict[str, Any]], *, name: str, agent: str | None = None
) -> dict[str, Any]:
    """A dataset (as data for YAML) from exported conversations (`glm-agent support export`, or
    the console's JSONL export)."""
    cases = [c for row in rows if (c := _case(row)) is not None]
    data: dict[str, Any] = {
        "name": name,
        "description": f"{len(cases)} conversations from the support bot's records.",
        "target": "bot",
    }
    if agent is not None:
        data["agent"] = agent
    data["cases"] = cases
    return data


def write_dataset(export: str | Path, output: str | Path, *, agent: str | None = None) -> int:
    """Turn an export file into a dataset file; returns how many cases it holds.

    Raises:
        ConfigError: a line of the export is not a conversation (names the line).
    """
    import yaml

    export, output = Path(export), Path(output)
    rows = []
    for n, line in enumerate(export.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"not JSON: {e.msg}", path=str(export), line=n) from None
        if not isinstance(row, dict) or "conversation_id" not in row or "messages" not in row:
            raise ConfigError(
                "not an exported conversation (needs conversation_id and messages)",
                path=str(export),
                line=n,
            )
        rows.append(row)
    data = dataset_from_export(rows, name=output.stem, agent=agent)
    output.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    output.write_text(
        "# Made by `glm-agent eval-import` from the bot's records; edit the expectations freely.\n"
        + text,
        encoding="utf-8",
    )
    return len(data["cases"])
