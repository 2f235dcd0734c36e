"""Finding 7 (low-medium): the webhook. The signature covered the body but not the timestamp
(a captured request replayed with a fresh X-Timestamp; `nan` passed as a timestamp); with two
workers one event was processed twice; the default secret `change-me` was accepted. Now the
signed string is `timestamp.body`, timestamps must be finite and recent, events are claimed
atomically in the shared database, and placeholder secrets are refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml
from bot_harness import Shop, live_server, make_bot
from pydantic import ValidationError

from glm_agent.serving.bot import (
    ChannelsConfig,
    SupportBot,
    WebhookConfig,
    create_bot_app,
    sign_webhook,
    verify_webhook,
)

SECRET = "a-webhook-secret-of-some-length"
CHANNELS = ChannelsConfig(webhook=WebhookConfig(secret=SECRET, max_skew_seconds=60))


def request(payload: dict[str, str], stamp: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = str(time.time()) if stamp is None else stamp
    return body, {"X-Signature": sign_webhook(SECRET, body, stamp), "X-Timestamp": stamp}


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    b = make_bot(tmp_path, shop, channels=CHANNELS)
    yield b
    b.close()


@pytest.fixture
def client(bot: SupportBot) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=20) as c,
    ):
        yield c


def test_a_captured_request_cannot_be_replayed_with_a_fresh_timestamp(
    client: httpx.Client, shop: Shop
) -> None:
    body, headers = request({"event_id": "e1", "customer_id": "c1", "text": "hello"})
    assert client.post("/v1/channels/webhook", content=body, headers=headers).status_code == 200
    calls = shop.model_calls
    fresh = {**headers, "X-Timestamp": str(time.time() + 1)}
    # Even with a new event id in the body the signature no longer matches.
    for replay_body in (body, body.replace(b'"e1"', b'"e2"')):
        r = client.post("/v1/channels/webhook", content=replay_body, headers=fresh)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "bad_signature"
    # The same request again (a retry within the window) gets the first answer, not a new run.
    again = client.post("/v1/channels/webhook", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert shop.model_calls == calls


@pytest.mark.parametrize(
    "stamp", ["nan", "NaN", "inf", "-inf", "1e309", "", "abc", "0", "99999999999999999999"]
)
def test_timestamps_must_be_finite_and_recent(client: httpx.Client, stamp: str) -> None:
    body, headers = request({"event_id": "e-" + stamp, "customer_id": "c1", "text": "x"}, stamp)
    r = client.post("/v1/channels/webhook", content=body, headers=headers)
    assert r.status_code == 401, r.text
    assert "X-Timestamp" in r.json()["error"]["message"]


def test_verify_webhook_names_the_problem() -> None:
    body = b"{}"
    now = str(time.time())
    assert verify_webhook(SECRET, body, sign_webhook(SECRET, body, now), now) is None
    assert "X-Signature" in str(verify_webhook(SECRET, body, None, now))
    assert "X-Signature" in str(verify_webhook(SECRET, body, "sha256=00", now))
    old = str(time.time() - 3600)
    assert "X-Timestamp" in str(verify_webhook(SECRET, body, sign_webhook(SECRET, body, old), old))


def test_two_workers_process_an_event_once(tmp_path: Path, shop: Shop) -> None:
    with ExitStack() as stack:
        urls = []
        for _ in range(2):
            b = make_bot(tmp_path, shop, channels=CHANNELS)  # one database, two processes' worth
            stack.callback(b.close)
            urls.append(stack.enter_context(live_server(create_bot_app(b, heartbeat=0.5))))
        for n in range(5):
            body, headers = request(
                {"event_id": f"ev-{n}", "customer_id": f"cust-{n}", "text": "order A-1001?"}
            )

            def post(i: int, body: bytes = body, headers: dict[str, str] = headers) -> int:
                url = urls[i % 2] + "/v1/channels/webhook"
                return httpx.post(url, content=body, headers=headers, timeout=20).status_code

            with ThreadPoolExecutor(6) as pool:
                assert set(pool.map(post, range(6))) == {200}
        # One run per event: a lookup call and an answer, five times.
        assert shop.model_calls == 10
        reader = make_bot(tmp_path, shop, channels=CHANNELS)
        stack.callback(reader.close)
        for n in range(5):
            conv = reader.db.find_open(reader.tenant, "webhook", f"cust-{n}")
            assert conv is not None
            said = reader.db.events(reader.tenant, conv.id, 0, "message")
            assert [e["text"] for _, e in said if e["role"] == "customer"] == ["order A-1001?"]


@pytest.mark.parametrize("secret", ["change-me", "CHANGEME", "secret", "short", ""])
def test_placeholder_and_short_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError) as e:
        WebhookConfig(secret=secret)
    assert "secret" in str(e.value)


def test_the_example_ships_no_webhook_secret() -> None:
    example = Path(__file__).parents[2] / "examples" / "customer-service" / "support.yaml"
    channels = yaml.safe_load(example.read_text(encoding="utf-8")).get("channels") or {}
    secret = str((channels.get("webhook") or {}).get("secret", "${WEBHOOK_SECRET}"))
    assert secret.startswith("${"), "the example must read its secret from the environment"
