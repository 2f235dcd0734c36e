"""Records: transcript export (JSONL, CSV) and the summary of counts and rates."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from glm_agent.exceptions import InvalidRequestError
from glm_agent.serving.bot._engine import BotCore

__all__ = ["export", "summary"]

_CSV_FIELDS = [
    "conversation_id",
    "channel",
    "status",
    "message_id",
    "role",
    "source",
    "ts",
    "text",
    "intent",
    "resolution",
    "handed_off",
    "csat",
]


def _rows(bot: BotCore) -> list[dict[str, Any]]:
    out = []
    for conv in bot.db.conversations(bot.tenant):
        messages = []
        for seq, e in bot.db.events(bot.tenant, conv.id, 0, "message"):
            # Stored texts are already redacted for transcripts; exports may mask more kinds.
            text = bot.redactor.redact(e["text"], "export")
            messages.append(
                {"id": seq, "role": e["role"], "source": e["source"], "ts": e["ts"], "text": text}
            )
        tags = {k: v for k, v in conv.tags.items() if k != "ratings"}
        out.append(
            {
                "conversation_id": conv.id,
                "channel": conv.channel,
                "status": conv.status,
                "created_at": conv.created_at,
                "tags": tags,
                "messages": messages,
            }
        )
    return out


def export(bot: BotCore, fmt: str) -> tuple[str, str]:
    """(body, media type) of every conversation of the tenant in `fmt` (`jsonl` or `csv`)."""
    rows = _rows(bot)
    if fmt == "jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return body, "application/x-ndjson"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for r in rows:
            tags = r["tags"]
            for m in r["messages"]:
                writer.writerow(
                    {  # every text a customer or an agent could have written goes through _cell
                        "conversation_id": r["conversation_id"],
                        "channel": r["channel"],
                        "status": r["status"],
                        "message_id": m["id"],
                        "role": m["role"],
                        "source": m["source"],
                        "ts": m["ts"],
                        "text": _cell(m["text"]),
                        "intent": _cell(tags.get("intent")),
                        "resolution": _cell(tags.get("resolution")),
                        "handed_off": bool(tags.get("handed_off")),
                        "csat": tags.get("csat"),
                    }
                )
        return buf.getvalue(), "text/csv"
    raise InvalidRequestError(f"unknown export format {fmt!r}; formats: jsonl, csv", param="format")


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a leading `=`, `+`, `-`, `@`, tab or CR would
    make it a formula (`=HYPERLINK(...)` in a customer's message), so it gets a `'` first."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def summary(bot: BotCore) -> dict[str, Any]:
    """Counts and rates over the tenant's conversations."""
    convs = bot.db.conversations(bot.tenant)
    sources: dict[str, int] = {}
    for conv in convs:
        for _, e in bot.db.events(bot.tenant, conv.id, 0, "message"):
            if e["role"] == "bot":
                sources[e["source"]] = sources.get(e["source"], 0) + 1
    answers = sources.get("model", 0) + sources.get("curated", 0)
    handed = sum(1 for c in convs if c.tags.get("handed_off"))
    csats = [float(c.tags["csat"]) for c in convs if c.tags.get("csat") is not None]
    ratings = [r for c in convs for r in (c.tags.get("ratings") or {}).values()]
    by_status: dict[str, int] = {}
    resolutions: dict[str, int] = {}
    intents: dict[str, int] = {}
    for c in convs:
        by_status[c.status] = by_status.get(c.status, 0) + 1
        if c.tags.get("resolution"):
            resolutions[str(c.tags["resolution"])] = (
                resolutions.get(str(c.tags["resolution"]), 0) + 1
            )
        if c.tags.get("intent"):
            intents[str(c.tags["intent"])] = intents.get(str(c.tags["intent"]), 0) + 1
    tickets = bot.db.count_tickets(bot.tenant)
    return {
        "conversations": len(convs),
        "by_status": by_status,
        "handed_off": handed,
        "handoff_rate": _rate(handed, len(convs)),
        "tickets": int(tickets),
        "bot_answers": answers,
        "curated_answers": sources.get("curated", 0),
        "curated_rate": _rate(sources.get("curated", 0), answers),
        "csat_count": len(csats),
        "csat_average": round(sum(csats) / len(csats), 3) if csats else None,
        "thumbs_up": ratings.count("up"),
        "thumbs_down": ratings.count("down"),
        "thumbs_up_rate": _rate(ratings.count("up"), len(ratings)),
        "resolutions": resolutions,
        "resolution_rate": _rate(
            sum(n for k, n in resolutions.items() if k != "unresolved"), len(convs)
        ),
        "intents": intents,
    }
