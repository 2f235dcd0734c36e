"""One pipeline, every door: the same scripted dialogue through the widget API, the OpenAI API
(the official client), the signed webhook, Feishu and the CLI gives the same replies, the same
stored transcript, the same handoff and the same redactions."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from bot_harness import Customer, live_server
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from glm_agent.retrieval import KnowledgeBase
from glm_agent.serving.bot import SupportBot, create_bot_app, sign_webhook

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "customer-service"
PHONE = "13439196312"
DIALOGUE = [
    "我的订单 SO10001 到哪了",
    f"SO10001 {PHONE}",
    "帮我取消订单 SO10001",
    "确认",
    "转人工",
]
SECRET = "doors-webhook-secret"
ADDRESS = "159 Huaihai Road, Shanghai"


class FeishuApi:
    """A local stand-in for Feishu's open API (token and message sending)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/open-apis/auth/v3/tenant_access_token/internal")
        async def token() -> dict[str, Any]:
            return {"code": 0, "tenant_access_token": "t-1", "expire": 7200}

        @app.post("/open-apis/im/v1/messages")
        async def send(request: Request) -> dict[str, Any]:
            self.sent.append(json.loads((await request.json())["content"])["text"])
            return {"code": 0}

        return app


@pytest.fixture(scope="module")
def feishu_api() -> Iterator[tuple[FeishuApi, str]]:
    fake = FeishuApi()
    with live_server(fake.app()) as url:
        yield fake, url


def make_shop(folder: Path, feishu_url: str) -> Path:
    """A fresh copy of the example shop (its own store), with the webhook and Feishu on."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".glm-agent", "__pycache__"))
    support = yaml.safe_load((folder / "support.yaml").read_text(encoding="utf-8"))
    support["channels"] = {
        # The integrator's ids are its own, not the shop's: customers verify as everywhere.
        "webhook": {"secret": SECRET, "trusted_identity": False},
        "feishu": {
            "app_id": "a",
            "app_secret": "s",
            "verification_token": "vt",
            "api_base": feishu_url,
        },
    }
    (folder / "support.yaml").write_text(yaml.safe_dump(support, allow_unicode=True), "utf-8")
    KnowledgeBase(folder / ".glm-agent" / "kb", embedder="test").close()
    return folder


def widget(url: str, bot: SupportBot, api: FeishuApi) -> list[list[str]]:
    with httpx.Client(base_url=url, timeout=30) as c:
        me = Customer(c, locale="zh")
        return [[r["text"] for r in me.replies(text)] for text in DIALOGUE]


def openai_api(url: str, bot: SupportBot, api: FeishuApi) -> list[list[str]]:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    out = []
    for i, text in enumerate(DIALOGUE):
        r = client.chat.completions.create(
            model="customer-service",
            messages=[{"role": "user", "content": text}],
            extra_headers={"X-Session-Id": "doors-1"},
            stream=i % 2 == 1,  # every other turn streamed: the same answers either way
        )
        if i % 2 == 1:
            chunks = list(r)
            content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            extension = [
                ch.choices[0].delta.model_extra.get("glm_agent")
                for ch in chunks
                if ch.choices and ch.choices[0].delta.model_extra
            ]
            assert extension and extension[-1]["conversation_id"]
        else:
            content = r.choices[0].message.content or ""
            assert r.choices[0].message.model_extra["glm_agent"]["conversation_id"]
        if text == "帮我取消订单 SO10001" and i % 2 == 0:
            pending = r.choices[0].message.model_extra["glm_agent"]["pending_confirmation"]
            assert pending["actions"][0]["tool"] == "cancel_order"
        out.append(content.split("\n\n") if content else [])
    return out


def webhook(url: str, bot: SupportBot, api: FeishuApi) -> list[list[str]]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for i, text in enumerate(DIALOGUE):
            body = json.dumps({"event_id": f"w-{i}", "customer_id": "crm-7", "text": text}).encode()
            ts = str(int(time.time()))
            headers = {"X-Signature": sign_webhook(SECRET, body, ts), "X-Timestamp": ts}
            r = c.post("/v1/channels/webhook", content=body, headers=headers)
            assert r.status_code == 200, r.text
            out.append([m["text"] for m in r.json()["replies"]])
    return out


def feishu(url: str, bot: SupportBot, api: FeishuApi) -> list[list[str]]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for i, text in enumerate(DIALOGUE):
            event = {
                "schema": "2.0",
                "header": {
                    "event_id": f"f-{i}",
                    "event_type": "im.message.receive_v1",
                    "token": "vt",
                },
                "event": {
                    "sender": {"sender_id": {"open_id": "ou_7"}},
                    "message": {
                        "chat_id": "oc_7",
                        "message_type": "text",
                        "content": json.dumps({"text": text}),
                    },
                },
            }
            before = len(api.sent)
            assert c.post("/v1/channels/feishu/events", json=event).status_code == 200
            # Replies go out of band, through Feishu's API.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                conv = bot.db.find_open(bot.tenant, "feishu", "ou_7")
                if conv and not bot._tasks and len(api.sent) > before:
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            out.append(api.sent[before:])
    return out


def cli(url: str, bot: SupportBot, api: FeishuApi, folder: Path | None = None) -> list[list[str]]:
    from glm_agent.cli import app

    assert folder is not None
    out = []
    runner = CliRunner()
    for text in DIALOGUE:
        r = runner.invoke(app, ["run", str(folder / "agent.yaml"), text, "--session", "c-1"])
        assert r.exit_code == 0, r.output
        lines = [ln for ln in r.stdout.splitlines() if ln and not ln.startswith("Loading")]
        out.append(lines)
    return out


DOORS: dict[str, Callable[..., list[list[str]]]] = {
    "widget": widget,
    "openai": openai_api,
    "webhook": webhook,
    "feishu": feishu,
    "cli": cli,
}


def _transcript(bot: SupportBot) -> list[tuple[str, str]]:
    """The stored session of the (only) conversation, tool calls as name + arguments."""
    [conv] = bot.db.conversations(bot.tenant)
    session = asyncio.run(bot.store.load(bot.tenant, conv.id))
    assert session is not None
    out = []
    for m in session.messages:
        if m.role == "assistant" and m.tool_calls:
            out += [("call", f"{c.name} {c.arguments}") for c in m.tool_calls]
        elif m.role != "system":
            out.append((m.role, m.content or ""))
    return out


def run_door(name: str, folder: Path, api: FeishuApi) -> dict[str, Any]:
    bot = SupportBot.from_yaml(folder / "agent.yaml")
    try:
        if name == "cli":
            bot.close()
            replies = cli("", bot, api, folder)
            bot = SupportBot.from_yaml(folder / "agent.yaml", prepare=False)
        else:
            with live_server(create_bot_app(bot, heartbeat=0.5)) as url:
                replies = DOORS[name](url, bot, api)
        [conv] = bot.db.conversations(bot.tenant)
        events = json.dumps([e for _, e in bot.db.events(bot.tenant, conv.id)], ensure_ascii=False)
        store = sqlite3.connect(folder / ".glm-agent" / "store.db")
        return {
            "replies": replies,
            "transcript": _transcript(bot),
            "tickets": bot.db.ticket_triggers(bot.tenant),
            "status": conv.status,
            "verified": conv.verified_customer,
            "order": store.execute("SELECT status FROM orders WHERE id='SO10001'").fetchone()[0],
            "raw_phone_stored": PHONE in events or PHONE in json.dumps(_transcript(bot)),
            "ticket_summary": (bot.db.latest_ticket(bot.tenant, conv.id) or {}).get("summary", ""),
        }
    finally:
        bot.close()


def test_every_door_is_the_same_pipeline(
    tmp_path: Path, feishu_api: tuple[FeishuApi, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPPORT_SESSIONS_URL", raising=False)
    results = {}
    for door in DOORS:
        folder = make_shop(tmp_path / door, feishu_api[1])
        monkeypatch.setenv("CS_STORE_DB", str(folder / ".glm-agent" / "store.db"))
        results[door] = run_door(door, folder, feishu_api[0])
    for door, got in results.items():
        assert got["replies"] == [
            ["为保护您的账户安全，请先提供一个订单号以及账户绑定的手机号或邮箱，我帮您核实身份。"],
            ["订单 SO10001 的状态是「待发货」，金额 268 元，收货地址：" + ADDRESS + "。"],
            ["请确认：取消订单 SO10001。回复“确认”继续，回复“取消”则不办理。"],
            ["订单 SO10001 已取消，268 元将在3个工作日内原路退回。"],
            ["正在为您转接人工客服，请稍候。"],
        ], door
        assert got["tickets"] == ["customer_request"], door
        assert (got["status"], got["verified"], got["order"]) == (
            "waiting_human",
            "C1001",
            "cancelled",
        ), door
        # Redacted wherever it is stored: session, event log, ticket.
        assert not got["raw_phone_stored"] and PHONE not in got["ticket_summary"], door
        # The same stored conversation from every door.
        assert got["transcript"] == results["widget"]["transcript"], door
    transcript = results["widget"]["transcript"]
    assert ("user", "SO10001 134****6312") in transcript
    verify = json.dumps({"order_id": "SO10001", "contact": "134****6312"})
    assert ("call", f"verify_customer {verify}") in transcript
    assert transcript[-1] == ("user", "转人工")
