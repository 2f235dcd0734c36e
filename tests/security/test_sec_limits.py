"""Finding 6 (medium): unbounded fields. The support routes had no rate limit and no field
limits: 20 requests with a 3.9 MB `customer_id` grew each database from 7.6 MB to 157 MB. Every
field now has a size limit, and the customer routes a per-address rate limit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import Customer, Shop, console_login, live_server, make_bot

from glm_agent.serving.bot import (
    ChannelsConfig,
    SupportBot,
    WebhookConfig,
    create_bot_app,
    sign_webhook,
)
from glm_agent.serving.bot._config import SupportLimits

SECRET = "a-webhook-secret-of-some-length"
BIG = "9" * 3_900_000


def files_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    b = make_bot(tmp_path, shop, channels=ChannelsConfig(webhook=WebhookConfig(secret=SECRET)))
    yield b
    b.close()


@pytest.fixture
def client(bot: SupportBot) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        yield c


def signed(c: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    stamp = str(time.time())
    headers = {"X-Signature": sign_webhook(SECRET, body, stamp), "X-Timestamp": stamp}
    return c.post("/v1/channels/webhook", content=body, headers=headers)


def test_oversized_fields_are_refused_and_nothing_grows(
    tmp_path: Path, client: httpx.Client
) -> None:
    customer = Customer(client)
    customer.say("hello")
    before = files_size(tmp_path)
    base = f"/v1/support/conversations/{customer.id}"
    console = console_login(client)
    attempts = [
        ("post", "/v1/support/conversations", {"channel": "web", "customer_id": BIG}, {}),
        ("post", base + "/messages", {"text": BIG}, customer.headers),
        (
            "post",
            base + "/feedback",
            {"message_id": 1, "rating": "up", "comment": BIG},
            customer.headers,
        ),
        ("post", base + "/handoff", {"reason": BIG}, customer.headers),
        ("post", "/v1/console/login", {"username": BIG, "password": "x"}, {}),
        ("patch", f"/v1/console/conversations/{customer.id}/tags", {"intent": BIG}, console),
        ("patch", f"/v1/console/conversations/{customer.id}/tags", {BIG[:5000]: 1}, console),
        ("post", "/v1/console/curated", {"question": BIG, "answer": "a"}, console),
    ]
    for _ in range(3):
        for method, path, body, headers in attempts:
            r = client.request(method, path, json=body, headers=headers)
            assert r.status_code in (400, 413), (path, r.status_code, r.text[:200])
            assert r.json()["error"]["message"]
            assert BIG[:1000] not in r.text  # the answer does not echo the payload back
        for field in ("customer_id", "text", "event_id", "conversation_id"):
            payload = {"event_id": f"e-{field}", "customer_id": "c1", "text": "hi", field: BIG}
            r = signed(client, payload)
            assert r.status_code in (400, 413), (field, r.text[:200])
    # Refused requests stored nothing: the files grew by less than one such field.
    assert files_size(tmp_path) - before < 1_000_000
    assert customer.transcript()["messages"][-1]["text"] != BIG


def test_many_tags_at_once_are_refused(client: httpx.Client) -> None:
    customer = Customer(client)
    console = console_login(client)
    path = f"/v1/console/conversations/{customer.id}/tags"
    r = client.patch(path, json={f"k{i}": i for i in range(50)}, headers=console)
    assert r.status_code == 400 and "at most 20 tags" in r.text
    assert client.patch(path, json={"intent": "refund"}, headers=console).status_code == 200


def test_customer_routes_are_rate_limited_per_address(tmp_path: Path, shop: Shop) -> None:
    limits = SupportLimits(conversations_per_minute=60, messages_per_minute=60, burst=3)
    bot = make_bot(tmp_path, shop, limits=limits)
    try:
        with (
            live_server(create_bot_app(bot, heartbeat=0.5)) as url,
            httpx.Client(base_url=url, timeout=20) as c,
        ):
            codes = [c.post("/v1/support/conversations", json={}).status_code for _ in range(5)]
            assert codes[:3] == [201, 201, 201] and codes[3] == 429
            r = c.post("/v1/support/conversations", json={})
            assert r.status_code == 429 and float(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["type"] == "rate_limit_error"
            # Messages have their own bucket.
            time.sleep(1.1)  # one conversation's worth refills (60 a minute)
            r = c.post("/v1/support/conversations", json={})
            assert r.status_code == 201
            token = {"X-Customer-Token": r.json()["customer_token"]}
            path = f"/v1/support/conversations/{r.json()['conversation_id']}/messages"
            codes = [c.post(path, json={"text": "hi"}, headers=token).status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    finally:
        bot.close()
