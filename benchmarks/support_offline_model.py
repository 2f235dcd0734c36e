"""The customer-service example's offline model on scripted customer turns (zh and en).

Plays every dialogue of `examples/customer-service/evals/offline_turns.yaml` through the real
support pipeline (`SupportBot.handle`: curated answers, policies, confirmations, handoff) on a
copy of the example with its store reset per dialogue, and scores each turn:

- intent handled: the reply is of the expected kind (curated, knowledge, verify, tool, confirm,
  refused, smalltalk, handoff, rephrase);
- tool: the tool whose outcome the reply reports is the expected one (or none when none is);
- passage: a knowledge answer cites the expected file first;
- handoff: the conversation went to a human when, and only when, it was due.

The baseline is the expectation itself: every figure is a share of the scripted turns.

    python benchmarks/support_offline_model.py [--embedder test] [--show-failures]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "customer-service"
TURNS = EXAMPLE / "evals" / "offline_turns.yaml"


def _kind(events: list[dict[str, Any]], last_tool: dict[str, Any] | None) -> str:
    messages = [e for e in events if e.get("type") == "message" and e.get("role") != "customer"]
    if any(e.get("type") == "status" and e.get("status") == "waiting_human" for e in events):
        return "handoff"
    sources = [m.get("source") for m in messages]
    if "curated" in sources:
        return "curated"
    if "confirmation" in sources:
        return "confirm"
    if "system" in sources:
        return "rephrase"
    if last_tool is not None:
        if last_tool["error"] == "identity_required":
            return "verify"
        if last_tool["declined"]:
            return "declined"
        return "refused" if last_tool["is_error"] else "tool"
    if any(m.get("citations") for m in messages):
        return "knowledge"
    return "smalltalk" if messages else "none"


def _tool_calls(session: Any) -> list[dict[str, Any]]:
    """Every tool call of the session in order, with its outcome once it has one."""
    calls: dict[str, dict[str, Any]] = {}
    for m in session.messages if session else []:
        if m.role == "assistant":
            for c in m.tool_calls:
                calls[c.id] = {
                    "tool": c.name,
                    "settled": False,
                    "is_error": False,
                    "error": None,
                    "declined": False,
                }
        elif m.role == "tool" and m.tool_call_id in calls:
            try:
                error = json.loads(m.content).get("error") if m.content.startswith("{") else None
            except ValueError:
                error = None
            calls[m.tool_call_id].update(
                settled=True,
                is_error=m.is_error,
                error=error,
                declined=m.content.startswith("the call was not approved"),
            )
    return list(calls.values())


async def play(bot: Any, seed: Any, dialogue: dict[str, Any]) -> list[dict[str, Any]]:
    seed.reset()
    conv, _, _ = await bot.create_conversation("web", None, None)
    rows = []
    for turn in dialogue["turns"]:
        session = await bot.store.load(bot.tenant, conv.id)
        before = _tool_calls(session)
        events: list[dict[str, Any]] = []

        async def collect(event: dict[str, Any], sink: list[dict[str, Any]] = events) -> None:
            sink.append(event)

        await bot.handle(conv.id, turn["say"], collect)
        after = _tool_calls(await bot.store.load(bot.tenant, conv.id))
        # This turn's calls: new ones, and a confirmed (or declined) one settled now.
        settled = [a for b, a in zip(before, after, strict=False) if b != a]
        new = [t for t in settled + after[len(before) :] if t["tool"] != "search_knowledge"]
        last = new[-1] if new else None
        messages = [e for e in events if e.get("type") == "message" and e.get("role") != "customer"]
        cites = [c["source"] for m in messages for c in m.get("citations") or []]
        handed = any(
            e.get("type") == "status" and e.get("status") == "waiting_human" for e in events
        )
        kind = _kind(events, last)
        rows.append(
            {
                "dialogue": dialogue["name"],
                "say": turn["say"],
                "reply": " | ".join(m["text"] for m in messages),
                "kind": kind,
                "kind_ok": kind == turn["kind"],
                "tool": last["tool"] if last else None,
                "tool_ok": (last["tool"] if last else None) == turn.get("tool"),
                "passage": cites[0] if cites else None,
                "passage_ok": None if "passage" not in turn else (cites[:1] == [turn["passage"]]),
                "handoff": handed,
                "handoff_due": bool(turn.get("handoff")),
            }
        )
        if handed:
            break  # the rest of the dialogue is a human's
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--embedder", default=None, help="knowledge embedder (default: the example's)")
    ap.add_argument("--show-failures", action="store_true", help="print every turn that missed")
    args = ap.parse_args()
    spec = yaml.safe_load(TURNS.read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix="cs-offline-"))
    folder = work / "customer-service"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".glm-agent", "__pycache__"))
    os.environ["CS_STORE_DB"] = str(folder / ".glm-agent" / "store.db")
    os.environ.pop("SUPPORT_SESSIONS_URL", None)
    sys.path.insert(0, str(folder))
    import seed

    from glm_agent.retrieval import KnowledgeBase
    from glm_agent.serving.bot import SupportBot

    if args.embedder:
        KnowledgeBase(folder / ".glm-agent" / "kb", embedder=args.embedder).close()
    bot = SupportBot.from_yaml(folder / "agent.yaml")
    rows: list[dict[str, Any]] = []
    try:
        for dialogue in spec["dialogues"]:
            rows += asyncio.run(play(bot, seed, dialogue))
    finally:
        bot.close()
        shutil.rmtree(work, ignore_errors=True)

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        lang = "zh" if any("\u3400" <= ch <= "\u9fff" for ch in r["say"]) else "en"
        groups[lang].append(r)
        groups["all"].append(r)

    def pct(n: int, d: int) -> str:
        return f"{100 * n / d:.1f}% ({n}/{d})" if d else "-"

    print(f"\nOffline model on {len(rows)} scripted customer turns ({TURNS.name})\n")
    print(
        "| turns | intent handled | correct tool | correct passage | handoff precision | handoff recall |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    table = {}
    for name in ("zh", "en", "all"):
        g = groups[name]
        passages = [r for r in g if r["passage_ok"] is not None]
        tp = sum(r["handoff"] and r["handoff_due"] for r in g)
        fp = sum(r["handoff"] and not r["handoff_due"] for r in g)
        fn = sum(r["handoff_due"] and not r["handoff"] for r in g)
        table[name] = {
            "turns": len(g),
            "intent": sum(r["kind_ok"] for r in g),
            "tool": sum(r["tool_ok"] for r in g),
            "passage": sum(bool(r["passage_ok"]) for r in passages),
            "passages": len(passages),
            "handoff_tp": tp,
            "handoff_fp": fp,
            "handoff_fn": fn,
        }
        print(
            f"| {name} ({len(g)}) | {pct(table[name]['intent'], len(g))} | "
            f"{pct(table[name]['tool'], len(g))} | "
            f"{pct(table[name]['passage'], len(passages))} | {pct(tp, tp + fp)} | "
            f"{pct(tp, tp + fn)} |"
        )
    if args.show_failures:
        for r in rows:
            if not (r["kind_ok"] and r["tool_ok"] and r["passage_ok"] is not False) or (
                r["handoff"] != r["handoff_due"]
            ):
                print(
                    f"- [{r['dialogue']}] {r['say']!r}: {r['kind']}, tool {r['tool']}, "
                    f"passage {r['passage']} -> {r['reply'][:120]!r}"
                )
    out = ROOT / "benchmarks" / "results" / "support_offline_model.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"table": table, "turns": rows}, ensure_ascii=False, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
