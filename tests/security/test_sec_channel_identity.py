"""Finding 1 (high): conversation hijack. Anyone could open a webhook / Feishu conversation in a
channel customer's name through the widget route, read the customer's next messages with the
token it returned and post replies to the customer's channel. A channel identity now belongs to
the channel: only its signed requests reach its conversations."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import Customer, Shop, live_server, make_bot

from glm_agent.serving.bot import (
    ChannelsConfig,
    FeishuConfig,
    SupportBot,
    WebhookConfig,
    create_bot_app,
    feishu_encrypt,
    feishu_signature,
    sign_webhook,
)

SECRET = "a-webhook-secret-of-some-length"
ENCRYPT_KEY = "feishu-encrypt-key"


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    channels = ChannelsConfig(
        webhook=WebhookConfig(secret=SECRET),
        feishu=FeishuConfig(verification_token="vt", encrypt_key=ENCRYPT_KEY, api_base="http://x"),
    )
    b = make_bot(tmp_path, shop, channels=channels)
    yield b
    b.close()


@pytest.fixture
def client(bot: SupportBot) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=20) as c,
    ):
        yield c


def webhook(c: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    stamp = str(time.time())
    headers = {"X-Signature": sign_webhook(SECRET, body, stamp), "X-Timestamp": stamp}
    return c.post("/v1/channels/webhook", content=body, headers=headers)


def feishu(c: httpx.Client, event_id: str, open_id: str, text: str) -> httpx.Response:
    event = {
        "schema": "2.0",
        "header": {"event_id": event_id, "event_type": "im.message.receive_v1", "token": "vt"},
        "event": {
            "sender": {"sender_id": {"open_id": open_id}},
            "message": {
                "chat_id": "oc_1",
                "message_id": "om_" + event_id,
                "message_type": "text",
                "content": json.dumps({"text": text}),
            },
        },
    }
    body = json.dumps({"encrypt": feishu_encrypt(ENCRYPT_KEY, json.dumps(event))}).encode()
    ts, nonce = str(int(time.time())), "n"
    headers = {
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": feishu_signature(ts, nonce, ENCRYPT_KEY, body),
    }
    return c.post("/v1/channels/feishu/events", content=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "webhook", "customer_id": "cust-42"},
        {"channel": "feishu", "customer_id": "ou_victim"},
        {"channel": "web", "customer_id": "cust-42"},
        {"customer_id": "cust-42"},
    ],
)
def test_the_widget_route_cannot_open_a_conversation_in_a_channel_customers_name(
    client: httpx.Client, bot: SupportBot, body: dict[str, Any]
) -> None:
    r = client.post("/v1/support/conversations", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] in ("channel", "customer_id")
    assert "token" not in r.text
    assert bot.db.find_open(bot.tenant, "webhook", "cust-42") is None
    assert bot.db.find_open(bot.tenant, "feishu", "ou_victim") is None


def test_the_victims_next_webhook_message_is_not_readable_by_anybody_else(
    client: httpx.Client, bot: SupportBot
) -> None:
    attacker = Customer(client)  # the most anyone gets from the widget route
    r = webhook(client, {"event_id": "e1", "customer_id": "cust-42", "text": "my phone changed"})
    assert r.status_code == 200, r.text
    victim_conv = r.json()["conversation_id"]
    assert victim_conv != attacker.id
    # The attacker's token opens the attacker's conversation only.
    r = client.get(f"/v1/support/conversations/{victim_conv}", headers=attacker.headers)
    assert r.status_code in (401, 403, 404), r.text
    assert "my phone changed" not in r.text
    assert all("my phone" not in m["text"] for m in attacker.transcript()["messages"])
    # Nor can the attacker type into it (replies would reach the victim's channel).
    r = client.post(
        f"/v1/support/conversations/{victim_conv}/messages",
        json={"text": "send me your code"},
        headers=attacker.headers,
    )
    assert r.status_code in (401, 403, 404), r.text


def test_a_signed_request_cannot_join_a_conversation_of_another_customer_or_channel(
    client: httpx.Client, bot: SupportBot
) -> None:
    web = Customer(client)
    first = webhook(client, {"event_id": "e1", "customer_id": "cust-1", "text": "hello"}).json()
    for target in (web.id, first["conversation_id"]):
        r = webhook(
            client,
            {
                "event_id": "e-" + target,
                "customer_id": "cust-2",
                "conversation_id": target,
                "text": "x",
            },
        )
        assert r.status_code == 404, r.text
    assert [m["text"] for m in web.transcript()["messages"] if m["role"] == "customer"] == []


def test_feishu_ids_belong_to_the_feishu_channel(client: httpx.Client, bot: SupportBot) -> None:
    attacker = Customer(client)
    r = feishu(client, "ev-1", "ou_victim", "hello from feishu")
    assert r.status_code == 200, r.text
    conv = bot.db.find_open(bot.tenant, "feishu", "ou_victim")
    assert conv is not None and conv.id != attacker.id
    r = client.get(f"/v1/support/conversations/{conv.id}", headers=attacker.headers)
    assert r.status_code in (401, 403, 404)


def test_feishu_without_a_token_or_key_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="anybody can post events"):
        FeishuConfig(app_id="cli", app_secret="s")
    with pytest.raises(ValueError, match="placeholder"):
        FeishuConfig(verification_token="change-me")
