"""What the fuzzing pass (test_sec_fuzz.py) found, each replayed against a real server on
127.0.0.1: every one answered 500 (or broke its stream) with a traceback in the log.

1. Ids past 64 bits (`PUT /v1/console/curated/9223372036854775808`, `after=` of the event
   streams): SQLite's OverflowError.
2. JSON strings holding a lone surrogate (`"\\ud800"`): Python decodes them to text with no
   UTF-8 form, which pydantic lets through plain `str` fields, and the write to SQLite failed
   (chat completions, console tags, webhook and Feishu event ids, Feishu message text).
3. An `X-Signature` with a non-ASCII character: `hmac.compare_digest` raised TypeError.
4. Feishu events whose `message` or `sender` is not an object, a ciphertext of one block (an IV
   and nothing else), a `url_verification` challenge nested 400 deep (sent back, too deep to
   encode); a chat id that is not an id was stored as the customer's id; an empty text message
   failed in the background.
5. A console tag edit could overwrite tags the bot keeps (`ratings`, `chat_id`...): after
   `{"ratings": "x"}` the summary and the customer's next thumbs up answered 500 (and
   `chat_id` would have sent the conversation's replies to another Feishu chat).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import Customer, Shop, console_login, live_server, make_bot

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

SECRET = "a-webhook-secret-of-some-length"
KEY = "feishu-encrypt-key"
TOKEN = "feishu-token"
BIG = str(2**63)
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    channels = ChannelsConfig(
        webhook=WebhookConfig(secret=SECRET),
        feishu=FeishuConfig(
            verification_token=TOKEN, encrypt_key=KEY, api_base="http://127.0.0.1:9"
        ),
    )
    b = make_bot(tmp_path, shop, channels=channels)
    yield b
    b.close()


@pytest.fixture
def client(bot: SupportBot, caplog: pytest.LogCaptureFixture) -> Iterator[httpx.Client]:
    caplog.set_level(logging.ERROR)
    with (
        live_server(create_bot_app(bot, heartbeat=0.2)) as url,
        httpx.Client(base_url=url, timeout=20) as c,
    ):
        yield c
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]  # answered, never a traceback


def _bad_request(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    message = r.json()["error"]["message"]
    assert all(w in message for w in words), message


def test_ids_past_64_bits_answer_400_naming_the_parameter(client: httpx.Client) -> None:
    console = console_login(client)
    curated = {"question": "q", "answer": "a"}
    for r in (
        client.put(f"/v1/console/curated/{BIG}", json=curated, headers=console),
        client.delete(f"/v1/console/curated/{BIG}", headers=console),
        client.post(f"/v1/console/review/{BIG}/promote", json={}, headers=console),
    ):
        _bad_request(r, "_id", "less than or equal to 9223372036854775807")
    customer = Customer(client)
    path = f"/v1/support/conversations/{customer.id}/events"
    _bad_request(client.get(path, params={"after": BIG}, headers=customer.headers), "after")
    _bad_request(client.get("/v1/console/events?after=-1", headers=console), "after")
    # The largest id is only a miss.
    last = str(2**63 - 1)
    assert client.delete(f"/v1/console/curated/{last}", headers=console).status_code == 404


def test_lone_surrogates_in_json_bodies_answer_400(client: httpx.Client) -> None:
    customer = Customer(client)
    console = console_login(client)
    lone = b'"a \\ud800 b"'  # a JSON string escaping half of a surrogate pair, alone
    cases: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("POST", "/v1/chat/completions", b'{"model": "agent", "messages": '
         b'[{"role": "user", "content": ' + lone + b"}]}", {}),
        ("PATCH", f"/v1/console/conversations/{customer.id}/tags", b'{"intent": ' + lone + b"}",
         console),
        ("PATCH", f"/v1/console/conversations/{customer.id}/tags", b"{" + lone + b": 1}",
         console),
        ("POST", f"/v1/support/conversations/{customer.id}/messages", b'{"text": ' + lone + b"}",
         customer.headers),
    ]  # fmt: skip
    for method, path, body, headers in cases:
        r = client.request(method, path, content=body, headers={**headers, **JSON})
        _bad_request(r, "lone surrogate (\\ud800)", "at character")
    # Raw UTF-8 bytes of a surrogate (which Python's json decodes the same way) too.
    raw = b'{"text": "\xed\xa0\x80"}'
    r = client.post(
        f"/v1/support/conversations/{customer.id}/messages",
        content=raw,
        headers={**customer.headers, **JSON},
    )
    _bad_request(r, "lone surrogate")
    # Surrogate pairs are characters like any other.
    r = client.post(
        f"/v1/support/conversations/{customer.id}/messages",
        content=b'{"text": "\\ud83d\\ude00"}',
        headers={**customer.headers, **JSON},
    )
    assert r.status_code == 200, r.text


def _webhook(body: bytes, signature: bytes | str | None = None) -> dict[str, Any]:
    stamp = str(time.time())
    return {
        "content": body,
        "headers": {
            "X-Timestamp": stamp,
            "X-Signature": sign_webhook(SECRET, body, stamp) if signature is None else signature,
        },
    }


def test_webhook_surrogates_and_non_ascii_signatures(client: httpx.Client) -> None:
    body = b'{"event_id": "\\udfff", "customer_id": "c1", "text": "hi"}'
    _bad_request(client.post("/v1/channels/webhook", **_webhook(body)), "JSON")
    body = b'{"event_id": "e1", "customer_id": "c1", "text": "hi"}'
    for signature in ("sha256=\xe9".encode("latin-1"), "sha256=Ã©".encode()):
        r = client.post("/v1/channels/webhook", **_webhook(body, signature))
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "bad_signature"
    assert client.post("/v1/channels/webhook", **_webhook(body)).status_code == 200
    # The function itself, with any text.
    now = str(time.time())
    assert "X-Signature" in str(verify_webhook(SECRET, body, "sha256=é\udcff", now))


def _feishu(event: Any, *, encrypted: bool = False) -> dict[str, Any]:
    body = json.dumps(event).encode()
    if encrypted:
        body = json.dumps({"encrypt": feishu_encrypt(KEY, body.decode())}).encode()
    ts, nonce = str(int(time.time())), "nonce"
    signature = feishu_signature(ts, nonce, KEY, body)
    headers = {
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": signature,
    }
    return {"content": body, "headers": headers}


def _message_event(event_id: Any, **event: Any) -> dict[str, Any]:
    message = {"message_type": "text", "content": json.dumps({"text": "hi"}), "chat_id": "oc_1"}
    base = {"sender": {"sender_id": {"open_id": "ou_1"}}, "message": message}
    return {
        "schema": "2.0",
        "header": {"event_id": event_id, "event_type": "im.message.receive_v1", "token": TOKEN},
        "event": {**base, **event},
    }


@pytest.mark.parametrize("encrypted", [False, True])
def test_feishu_events_of_the_wrong_shape_answer_400(
    client: httpx.Client, bot: SupportBot, encrypted: bool
) -> None:
    message = {"message_type": "text", "content": json.dumps({"text": "hi"})}
    odd: dict[str, dict[str, Any]] = {
        "message list": {"message": [1]},
        "message string": {"message": "hi"},
        "sender string": {"sender": "ou_1"},
        "chat id object": {"message": {**message, "chat_id": {"x": 1}}},
        "chat id too long": {"message": {**message, "chat_id": "c" * 201}},
        "surrogate text": {"message": {**message, "content": '{"text": "\\ud800"}'}},
    }
    for n, (name, event) in enumerate(odd.items()):
        request = _feishu(_message_event(f"e{n}", **event), encrypted=encrypted)
        r = client.post("/v1/channels/feishu/events", **request)
        assert r.status_code == 400, (name, r.status_code, r.text)
    ids: dict[str, Any] = {"surrogate": "\udfff", "too long": "e" * 201, "object": {"a": 1}}
    for name, event_id in ids.items():
        r = client.post("/v1/channels/feishu/events", **_feishu(_message_event(event_id)))
        assert r.status_code == 400, (name, r.status_code, r.text)
    # Nothing of them was stored as a conversation.
    assert bot.db.conversations(bot.tenant) == []


def test_a_feishu_ciphertext_of_one_block_answers_400(client: httpx.Client) -> None:
    for raw in (b"i" * 16, b"i" * 16 + b"x" * 8, b"i" * 31):
        body = json.dumps({"encrypt": base64.b64encode(raw).decode()}).encode()
        r = client.post("/v1/channels/feishu/events", **_feishu_raw(body))
        assert r.status_code == 400, (len(raw), r.text)
    with pytest.raises(ValueError, match="AES blocks"):
        feishu_decrypt(KEY, base64.b64encode(b"i" * 16).decode())


def _feishu_raw(body: bytes) -> dict[str, Any]:
    ts, nonce = str(int(time.time())), "nonce"
    headers = {
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": feishu_signature(ts, nonce, KEY, body),
    }
    return {"content": body, "headers": headers}


def test_an_empty_feishu_message_is_answered_quietly(
    client: httpx.Client, bot: SupportBot, shop: Shop
) -> None:
    empty = {"message_type": "text", "content": json.dumps({"text": "  "}), "chat_id": "oc_1"}
    r = client.post("/v1/channels/feishu/events", **_feishu(_message_event("e1", message=empty)))
    assert r.status_code == 200 and r.json() == {}
    assert bot.db.conversations(bot.tenant) == [] and shop.model_calls == 0


def test_a_feishu_challenge_must_be_a_string(client: httpx.Client) -> None:
    verification = {"type": "url_verification", "token": TOKEN}
    deep = json.loads("[" * 400 + "]" * 400)
    for challenge in (deep, {"a": 1}, 12, None, "c" * 201):
        r = client.post(
            "/v1/channels/feishu/events", **_feishu({**verification, "challenge": challenge})
        )
        assert r.status_code == 400, (str(challenge)[:20], r.text)
    r = client.post("/v1/channels/feishu/events", **_feishu({**verification, "challenge": "ch-1"}))
    assert r.json() == {"challenge": "ch-1"}


def test_console_tag_edits_leave_the_bots_own_tags_alone(client: httpx.Client) -> None:
    customer = Customer(client)
    (answer,) = customer.replies("hello")
    console = console_login(client)
    path = f"/v1/console/conversations/{customer.id}/tags"
    for key in ("ratings", "chat_id", "handed_off", "handoff_trigger"):
        r = client.patch(path, json={key: "x", "intent": "refund"}, headers=console)
        _bad_request(r, repr(key), "kept by the bot")
    assert "intent" not in customer.transcript()["tags"]  # nothing of a refused edit is kept
    assert client.patch(path, json={"intent": "refund"}, headers=console).status_code == 200
    # What read the bot's tags still works.
    feedback = {"message_id": answer["seq"], "rating": "up"}
    r = client.post(
        f"/v1/support/conversations/{customer.id}/feedback", json=feedback, headers=customer.headers
    )
    assert r.status_code == 200, r.text
    summary = client.get("/v1/console/summary", headers=console).json()
    assert summary["thumbs_up"] == 1 and summary["intents"] == {"refund": 1}
