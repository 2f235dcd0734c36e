"""The signed JSON webhook and the Feishu event callback, against real local HTTP servers."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import Shop, console_login, live_server, make_bot
from fastapi import FastAPI, Request

from glm_agent.serving.bot import (
    ChannelsConfig,
    FeishuConfig,
    SupportBot,
    WebhookConfig,
    create_bot_app,
    feishu_decrypt,
    feishu_encrypt,
    feishu_signature,
    sign_webhook,
    verify_webhook,
)

SECRET = "webhook-secret-for-tests"
ENCRYPT_KEY = "feishu-encrypt-key"


class FeishuApi:
    """A local stand-in for Feishu's open API: token endpoint and message sending."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.callbacks: list[dict[str, Any]] = []

    def app(self) -> Any:
        app = FastAPI()

        @app.post("/open-apis/auth/v3/tenant_access_token/internal")
        async def token(body: dict[str, Any]) -> dict[str, Any]:
            assert body == {"app_id": "cli_app", "app_secret": "app-secret"}
            return {"code": 0, "tenant_access_token": "t-123", "expire": 7200}

        @app.post("/open-apis/im/v1/messages")
        async def send(request: Request) -> dict[str, Any]:
            assert request.headers["authorization"] == "Bearer t-123"
            assert request.query_params["receive_id_type"] == "chat_id"
            self.sent.append(await request.json())
            return {"code": 0}

        @app.post("/callback")
        async def callback(request: Request) -> dict[str, Any]:
            body = await request.body()
            ok = verify_webhook(
                SECRET, body, request.headers.get("x-signature"), request.headers.get("x-timestamp")
            )
            self.callbacks.append({"ok": ok is None, **json.loads(body)})
            return {}

        return app


@pytest.fixture
def api() -> Iterator[tuple[FeishuApi, str]]:
    fake = FeishuApi()
    with live_server(fake.app()) as url:
        yield fake, url


@pytest.fixture
def channel_bot(tmp_path: Path, shop: Shop, api: tuple[FeishuApi, str]) -> SupportBot:
    _, url = api
    channels = ChannelsConfig(
        webhook=WebhookConfig(secret=SECRET, callback_url=url + "/callback"),
        feishu=FeishuConfig(
            app_id="cli_app",
            app_secret="app-secret",
            verification_token="vt",
            encrypt_key=ENCRYPT_KEY,
            api_base=url,
        ),
    )
    return make_bot(tmp_path, shop, channels=channels)


@pytest.fixture
def ch(channel_bot: SupportBot) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(channel_bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=20) as c,
    ):
        yield c


def post_webhook(
    c: httpx.Client, payload: dict[str, Any], *, secret: str = SECRET, ts: float | None = None
) -> httpx.Response:
    body = json.dumps(payload).encode()
    stamp = str(ts or time.time())
    headers = {
        "X-Signature": sign_webhook(secret, body, stamp),
        "X-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return c.post("/v1/channels/webhook", content=body, headers=headers)


def test_webhook_signatures() -> None:
    body = b'{"a": 1}'
    now = str(time.time())
    sig = sign_webhook(SECRET, body, now)
    assert verify_webhook(SECRET, body, sig, now) is None
    assert "match" in (verify_webhook(SECRET, body + b" ", sig, now) or "")
    assert "match" in (verify_webhook("other", body, sig, now) or "")
    old = str(time.time() - 301)
    assert "away" in (verify_webhook(SECRET, body, sign_webhook(SECRET, body, old), old) or "")
    assert "missing" in (verify_webhook(SECRET, body, None, "1") or "")


def test_webhook_channel_is_idempotent_and_human_replies_go_to_the_callback(
    ch: httpx.Client, shop: Shop, api: tuple[FeishuApi, str], channel_bot: SupportBot
) -> None:
    fake, _ = api
    payload = {"event_id": "ev-1", "customer_id": "cust-9", "text": "status of A-1001?"}
    first = post_webhook(ch, payload)
    assert first.status_code == 200, first.text
    replies = first.json()["replies"]
    assert [r["text"] for r in replies if r["source"] == "model"] == ["Order A-1001 is delivered."]
    calls = shop.model_calls
    again = post_webhook(ch, payload)  # a retry: same answer, no second model call
    assert again.json()["replies"] == replies and again.json()["duplicate"] is True
    assert shop.model_calls == calls
    # The same customer continues the same conversation.
    second = post_webhook(ch, {"event_id": "ev-2", "customer_id": "cust-9", "text": "and A-1002?"})
    assert second.json()["conversation_id"] == first.json()["conversation_id"]

    assert post_webhook(ch, payload, secret="wrong").status_code == 401
    assert post_webhook(ch, payload, ts=time.time() - 3600).status_code == 401
    assert ch.post("/v1/channels/webhook", json=payload).status_code == 401

    # A human agent's reply reaches the webhook caller through its signed callback URL.
    conv_id = first.json()["conversation_id"]
    post_webhook(ch, {"event_id": "ev-3", "conversation_id": conv_id, "text": "human please"})
    headers = console_login(ch)
    ch.post(
        f"/v1/console/conversations/{conv_id}/reply", json={"text": "Bob here"}, headers=headers
    )
    human = [c for c in fake.callbacks if c["text"] == "Bob here"]
    assert human and human[0]["ok"] and human[0]["conversation_id"] == conv_id


def feishu_post(
    c: httpx.Client, payload: dict[str, Any], *, sign: bool = True, key: str = ENCRYPT_KEY
) -> httpx.Response:
    body = json.dumps({"encrypt": feishu_encrypt(ENCRYPT_KEY, json.dumps(payload))}).encode()
    ts, nonce = str(int(time.time())), "nonce-1"
    headers = {"Content-Type": "application/json"}
    if sign:
        headers |= {
            "X-Lark-Request-Timestamp": ts,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": feishu_signature(ts, nonce, key, body),
        }
    return c.post("/v1/channels/feishu/events", content=body, headers=headers)


def message_event(event_id: str, text: str) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {"event_id": event_id, "event_type": "im.message.receive_v1", "token": "vt"},
        "event": {
            "sender": {"sender_id": {"open_id": "ou_1"}},
            "message": {
                "chat_id": "oc_42",
                "message_id": "om_1",
                "message_type": "text",
                "content": json.dumps({"text": text}),
            },
        },
    }


def test_feishu_crypto_roundtrip() -> None:
    secret = feishu_encrypt(ENCRYPT_KEY, '{"x": "飞书"}')
    assert feishu_decrypt(ENCRYPT_KEY, secret) == '{"x": "飞书"}'
    with pytest.raises(ValueError):
        feishu_decrypt("another key", secret)
    want = hashlib.sha256(b"1" + b"n" + ENCRYPT_KEY.encode() + b"{}").hexdigest()
    assert feishu_signature("1", "n", ENCRYPT_KEY, b"{}") == want


def test_feishu_events(
    ch: httpx.Client, shop: Shop, api: tuple[FeishuApi, str], channel_bot: SupportBot
) -> None:
    fake, _ = api
    challenge = {"type": "url_verification", "challenge": "ch-1", "token": "vt"}
    assert feishu_post(ch, challenge, sign=False).json() == {"challenge": "ch-1"}
    assert feishu_post(ch, {**challenge, "token": "bad"}, sign=False).status_code == 401

    assert feishu_post(ch, message_event("e-1", "where is A-1001"), key="wrong").status_code == 401
    assert feishu_post(ch, message_event("e-1", "where is A-1001"), sign=False).status_code == 401
    r = feishu_post(ch, message_event("e-1", "where is A-1001"))
    assert r.status_code == 200 and r.json() == {}
    deadline = time.monotonic() + 10
    while not any("A-1001" in m["content"] for m in fake.sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    texts = [json.loads(m["content"])["text"] for m in fake.sent]
    assert "Order A-1001 is delivered." in texts
    assert all(m["receive_id"] == "oc_42" for m in fake.sent)
    calls = shop.model_calls
    assert feishu_post(ch, message_event("e-1", "where is A-1001")).json() == {"duplicate": True}
    time.sleep(0.2)
    assert shop.model_calls == calls
