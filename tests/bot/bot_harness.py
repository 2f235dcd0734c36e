"""Support-bot test harness: a scripted FunctionModel shop agent, the bot, a real uvicorn server,
SSE parsing and a widget-like client. (Not conftest.py: every test folder has one, and
`from conftest import` picks whichever was imported last in a whole-suite run.)"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from glm_agent.models import AgentInfo, FunctionModel
from glm_agent.serving.bot import SupportBot, SupportConfig, hash_password
from glm_agent.serving.bot._config import SupportLimits
from glm_agent.tools import ToolRegistry, tool

UNLIMITED = SupportLimits(conversations_per_minute=1e6, messages_per_minute=1e6, burst=10**6)

PASSWORD = "s3cret-pass"
ACCOUNTS = {
    "alice": hash_password(PASSWORD, salt=b"test-salt-alice"),
    "bob": "sha256$" + __import__("hashlib").sha256(b"bob-pass").hexdigest(),
}


class Shop:
    """A tiny order database the tools change, and a count of model calls."""

    def __init__(self) -> None:
        self.orders = {
            f"A-{1000 + i}": {"status": "delivered" if i % 2 else "processing"} for i in range(60)
        }
        self.model_calls = 0
        self.summary_calls = 0


def make_registry(shop: Shop) -> ToolRegistry:
    @tool
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look up an order.

        Args:
            order_id: The order number, e.g. A-1001.
        """
        if order_id not in shop.orders:
            raise ValueError(f"no order {order_id}")
        return {"order_id": order_id, **shop.orders[order_id]}

    @tool(requires_approval=True)
    def return_order(order_id: str) -> dict[str, Any]:
        """Start a return of a delivered order.

        Args:
            order_id: The order number.
        """
        shop.orders[order_id]["status"] = "return_requested"
        return {"order_id": order_id, "status": "return_requested"}

    @tool
    def hand_off(reason: str) -> str:
        """Hand the conversation to a human.

        Args:
            reason: Why.
        """
        return "transferring"

    return ToolRegistry([lookup_order, return_order, hand_off])


def shop_turn(shop: Shop) -> Any:
    """The scripted model: lookups and returns by order id, handoff on 'escalate', echoes."""

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if isinstance(messages[0], SystemMessage) and messages[0].content.startswith("Summarise"):
            shop.summary_calls += 1
            return "MODEL SUMMARY: " + (messages[-1].content or "").splitlines()[-1]
        shop.model_calls += 1
        last = messages[-1]
        if isinstance(last, ToolMessage):
            if last.is_error:
                return f"Not done: {last.content}"
            data = json.loads(last.content) if last.content.startswith("{") else last.content
            if isinstance(data, dict):
                return f"Order {data['order_id']} is {data['status']}."
            return str(data)
        text = last.content if isinstance(last, UserMessage) else ""
        if "escalate" in text:
            return AssistantMessage(tool_calls=(ToolCall.from_args("hand_off", {"reason": text}),))
        if "crash" in text:
            raise RuntimeError("model backend down")
        if "silence" in text:
            return ""
        if m := re.search(r"A-\d{4}", text):
            name = "return_order" if "return" in text else "lookup_order"
            return AssistantMessage(tool_calls=(ToolCall.from_args(name, {"order_id": m[0]}),))
        return f"echo: {text}"

    return turn


def make_bot(
    tmp_path: Path, shop: Shop, *, tenant: str = "acme", db: str = "support.db", **config: Any
) -> SupportBot:
    agent: Agent[str] = Agent(
        FunctionModel(shop_turn(shop), name="shop", chunk_size=3),
        tools=make_registry(shop),
        system_prompt="You are the shop's assistant.",
    )
    # Tests send many requests from one address: the per-address limits are their own test's.
    config.setdefault("limits", UNLIMITED)
    cfg = SupportConfig(
        tenant=tenant, database=str(tmp_path / db), console_accounts=ACCOUNTS, **config
    )
    return SupportBot(
        agent, cfg, base_dir=tmp_path, store=SQLiteStore(str(tmp_path / "sessions.db"))
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The data of every event in an SSE body (comments skipped), with `seq` from `id:`."""
    events = []
    for block in text.split("\n\n"):
        data, seq = None, None
        for line in block.splitlines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line.startswith("id: "):
                seq = int(line[4:])
        if data is not None:
            if seq is not None:
                data["seq"] = seq
            events.append(data)
    return events


class Customer:
    """A widget-like client of one conversation."""

    def __init__(self, client: httpx.Client, locale: str | None = "en", **body: Any) -> None:
        self.client = client
        r = client.post(
            "/v1/support/conversations", json={"channel": "web", "locale": locale, **body}
        )
        assert r.status_code == 201, r.text
        data = r.json()
        self.id, self.token = data["conversation_id"], data["customer_token"]
        self.greeting = data["greeting"]
        self.headers = {"X-Customer-Token": self.token}

    def say(self, text: str) -> list[dict[str, Any]]:
        r = self.client.post(
            f"/v1/support/conversations/{self.id}/messages",
            json={"text": text},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream")
        return parse_sse(r.text)

    def replies(self, text: str) -> list[dict[str, Any]]:
        """The non-customer messages the bot sent back for `text`."""
        return [e for e in self.say(text) if e["type"] == "message" and e["role"] != "customer"]

    def transcript(self) -> dict[str, Any]:
        r = self.client.get(f"/v1/support/conversations/{self.id}", headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())


def console_login(
    client: httpx.Client, user: str = "alice", password: str = PASSWORD
) -> dict[str, str]:
    r = client.post("/v1/console/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}
