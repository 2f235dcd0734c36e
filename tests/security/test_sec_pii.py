"""Finding 4 (medium): PII masking gaps. Full-width digits, ID numbers with spaces and card
numbers with dots went unmasked into the console, exports and sessions; while a confirmation
was pending the unmasked text sat in the bot's database (and its write-ahead log) even after the
customer declined. Now one normalisation step runs before matching, and pending confirmations
are stored redacted (the real arguments wait in memory only)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import UNLIMITED, Customer, console_login, live_server

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from glm_agent.models import AgentInfo, FunctionModel
from glm_agent.serving.bot import SupportBot, SupportConfig, create_bot_app, hash_password
from glm_agent.serving.bot.redaction import Redactor
from glm_agent.tools import ToolRegistry, tool

PHONE = "13912345678"
ID = "11010519491231002X"  # the sample number of GB 11643
CARD = "4111111111111111"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# How customers actually type them.
VARIANTS = {
    "full-width phone": PHONE.translate(FULL_WIDTH),
    "spaced phone": "139 1234 5678",
    "dashed phone": "139-1234-5678",
    "spaced id": "110105 19491231 002X",
    "full-width id": ID.translate(FULL_WIDTH),
    "dotted card": "4111.1111.1111.1111",
    "spaced card": "4111 1111 1111 1111",
    "middle-dot card": "4111·1111·1111·1111",
    "full-width spaced card": "４１１１　１１１１　１１１１　１１１１",
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_redactor_masks_every_way_of_writing_a_number(name: str) -> None:
    text = f"我的号码是{VARIANTS[name]}，谢谢"
    out = Redactor().redact(text)
    digits = re.sub(r"\D", "", out.translate({ord(c): None for c in "*"}))
    for raw in (PHONE, ID[:-1], CARD):
        assert raw not in digits, out
    assert "*" in out and out.startswith("我的号码是") and out.endswith("，谢谢")


def test_lookalikes_are_left_alone() -> None:
    text = "订单 SO10001，金额 2000000000000 元，日期 2024-05-01"
    assert Redactor().redact(text) == text


CHANGED: list[dict[str, Any]] = []


@tool(requires_approval=True)
def update_phone(phone: str) -> str:
    """Change the phone number on the account.

    Args:
        phone: The new number.
    """
    CHANGED.append({"phone": phone})
    return "updated"


def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return "Done." if not last.is_error else "Not changed."
    text = last.content if isinstance(last, UserMessage) else ""
    if m := re.search(r"phone to (.+)$", text):
        return AssistantMessage(tool_calls=(ToolCall.from_args("update_phone", {"phone": m[1]}),))
    return "Noted."


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[SupportBot]:
    CHANGED.clear()
    agent: Agent[str] = Agent(FunctionModel(turn, name="m"), tools=ToolRegistry([update_phone]))
    cfg = SupportConfig(
        database=str(tmp_path / "support.db"),
        console_accounts={"alice": hash_password("pw-for-alice", salt=b"0123456789abcdef")},
        limits=UNLIMITED,
    )
    b = SupportBot(agent, cfg, base_dir=tmp_path, store=SQLiteStore(str(tmp_path / "s.db")))
    yield b
    b.close()


@pytest.fixture
def client(bot: SupportBot) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=20) as c,
    ):
        yield c


def needles(value: str) -> list[bytes]:
    """`value` as it could sit in a file: UTF-8, JSON-escaped, digits only."""
    forms = {value, re.sub(r"[^0-9X０-９]", "", value)}
    out = []
    for form in forms:
        out.append(form.encode())
        out.append(json.dumps(form).strip('"').encode())
    return out


def leaked(folder: Path, values: list[str]) -> list[str]:
    """Which of `values` appear in any file under `folder` (databases, WAL, journals)."""
    blobs = [p.read_bytes() for p in folder.rglob("*") if p.is_file()]
    return [v for v in values if any(n in blob for n in needles(v) for blob in blobs)]


def test_no_door_shows_a_number_in_any_of_its_forms(tmp_path: Path, client: httpx.Client) -> None:
    customer = Customer(client)
    for text in VARIANTS.values():
        customer.say(f"my number is {text}")
    shown = json.dumps(customer.transcript(), ensure_ascii=False)
    headers = console_login(client, "alice", "pw-for-alice")
    shown += client.get(f"/v1/console/conversations/{customer.id}", headers=headers).text
    for fmt in ("jsonl", "csv"):
        shown += client.get(f"/v1/console/export?format={fmt}", headers=headers).text
    for value in VARIANTS.values():
        assert not any(n.decode() in shown for n in needles(value)), value
    assert leaked(tmp_path, list(VARIANTS.values())) == []


@pytest.mark.parametrize("answer", ["no", "yes"])
def test_a_pending_confirmation_never_writes_the_number_unmasked(
    tmp_path: Path, client: httpx.Client, answer: str
) -> None:
    customer = Customer(client)
    typed = "１３９ １２３４ ５６７８"
    replies = customer.replies(f"change my phone to {typed}")
    assert replies[-1]["source"] == "confirmation"
    assert leaked(tmp_path, [typed, PHONE]) == []  # while the customer decides
    customer.replies(answer)
    # Confirmed, the tool got the number as typed; declined, it never ran. Either way the
    # files (databases, WAL) never held it.
    expected = [{"phone": typed}] if answer == "yes" else []
    assert expected == CHANGED
    assert leaked(tmp_path, [typed, PHONE]) == []
