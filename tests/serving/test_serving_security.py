"""API keys, scopes, tenant isolation, rate limits, body limits, CORS, request ids, metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from serving_harness import live_server, make_agent, plain_model

from glm_agent.serving import (
    ApiKey,
    RateLimit,
    ServerConfig,
    create_app,
    generate_key,
    hash_key,
)

ACME, GLOBEX, READER, SLOW = (generate_key() for _ in range(4))


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[str]:
    keys = [
        ApiKey(hash=hash_key(ACME), tenant="acme", scopes=["chat", "runs", "sessions"]),
        ApiKey(hash=hash_key(GLOBEX), tenant="globex", scopes=["admin"], name="globex-admin"),
        ApiKey(hash=hash_key(READER), tenant="acme", scopes=["chat"]),
        ApiKey(
            hash=hash_key(SLOW),
            tenant="acme",
            scopes=["chat"],
            # A slow refill: a loaded machine cannot refill the bucket between requests.
            rate_limit=RateLimit(requests_per_minute=6, burst=2),
        ),
    ]
    config = ServerConfig(keys=keys, max_body_bytes=2048, cors_origins=["https://shop.example"])
    app = create_app([make_agent(tmp_path)], models={"plain": plain_model()}, config=config)
    with live_server(app) as url:
        yield url


def _chat(url: str, key: str | None, content: str = "hi", session: str = "s1") -> httpx.Response:
    headers = {"X-Session-Id": session}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    body = {"model": "support", "messages": [{"role": "user", "content": content}]}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers)


def test_keys_are_stored_hashed() -> None:
    key = generate_key()
    assert key.startswith("gak_") and len(key) > 40
    assert hash_key(key).startswith("sha256:") and key not in hash_key(key)
    assert generate_key() != key


def test_missing_wrong_and_underscoped_keys(secured: str) -> None:
    r = _chat(secured, None)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    assert _chat(secured, "gak_wrong").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=secured + "/v1", api_key="nope", max_retries=0).models.list()
    r = httpx.get(secured + "/v1/sessions/s1", headers={"Authorization": f"Bearer {READER}"})
    assert r.status_code == 403
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert "sessions" in r.json()["error"]["message"]
    assert _chat(secured, ACME).status_code == 200


def test_a_key_only_sees_its_tenants_sessions(secured: str) -> None:
    assert _chat(secured, ACME, "my name is Ann", session="shared").status_code == 200
    assert _chat(secured, GLOBEX, "my name is Gus", session="shared").status_code == 200
    # Same session id, two tenants: two separate conversations.
    assert _chat(secured, ACME, "who?", "shared").json()["choices"][0]["message"]["content"] == (
        "You are Ann (turn 2)."
    )
    auth = {"Authorization": f"Bearer {GLOBEX}"}
    session = httpx.get(secured + "/v1/sessions/shared", headers=auth).json()
    assert [m["content"] for m in session["messages"] if m["role"] == "user"] == ["my name is Gus"]
    assert _chat(secured, ACME, "my name is Al", session="acme-only").status_code == 200
    assert httpx.get(secured + "/v1/sessions/acme-only", headers=auth).status_code == 404
    assert httpx.delete(secured + "/v1/sessions/acme-only", headers=auth).status_code == 404
    listed = httpx.get(secured + "/v1/sessions", headers=auth).json()["data"]
    assert [s["session_id"] for s in listed] == ["shared"]
    acme = {"Authorization": f"Bearer {ACME}"}
    assert httpx.delete(secured + "/v1/sessions/acme-only", headers=acme).json()["deleted"]
    assert httpx.get(secured + "/v1/sessions/acme-only", headers=acme).status_code == 404


def test_rate_limit_answers_429_with_retry_after(secured: str) -> None:
    auth = {"Authorization": f"Bearer {SLOW}"}
    codes = [httpx.get(secured + "/v1/models", headers=auth).status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and 429 in codes[2:]
    r = httpx.get(secured + "/v1/models", headers=auth)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error"
    # Other keys have their own buckets.
    assert _chat(secured, ACME).status_code == 200


def test_body_size_limit(secured: str) -> None:
    r = _chat(secured, ACME, "x" * 5000)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        body = json.dumps(
            {"model": "support", "messages": [{"role": "user", "content": "y" * 5000}]}
        )
        for i in range(0, len(body), 500):
            yield body[i : i + 500].encode()

    r = httpx.post(
        secured + "/v1/chat/completions",
        content=chunks(),
        headers={"Authorization": f"Bearer {ACME}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_cors_request_id_and_error_shapes(secured: str) -> None:
    r = httpx.options(
        secured + "/v1/chat/completions",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    r = httpx.get(secured + "/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = httpx.get(secured + "/healthz", headers={"X-Request-Id": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    generated = httpx.get(secured + "/healthz", headers={"X-Request-Id": "bad id;<x>"})
    assert (
        generated.headers["x-request-id"] != "bad id"
        and len(generated.headers["x-request-id"]) == 32
    )
    r = httpx.get(secured + "/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.post(
        secured + "/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {ACME}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_health_readiness_and_metrics(secured: str) -> None:
    assert httpx.get(secured + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(secured + "/readyz")
    assert ready.status_code == 200 and ready.json()["agents"] == ["support"]
    _chat(secured, ACME, "Where is A-1042?", session="m1")
    _chat(secured, None)
    text = httpx.get(secured + "/metrics").text
    assert (
        'glm_agent_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}'
        in text
    )
    assert 'status="401"' in text
    assert 'glm_agent_tool_calls_total{model="support",status="ok",tool="order_status"} 1.0' in text
    assert 'glm_agent_tokens_total{kind="input",model="support"}' in text
    assert "glm_agent_http_request_seconds_bucket" in text


def test_json_logs_carry_request_id_and_never_the_key(
    secured: str, caplog: pytest.LogCaptureFixture
) -> None:
    from glm_agent.serving._middleware import JsonLogFormatter

    with caplog.at_level(logging.INFO, logger="glm_agent.serving"):
        r = _chat(secured, GLOBEX)
        # The access line is written after the last byte is sent, so it may trail the response.
        deadline = time.monotonic() + 5
        while not any(rec.getMessage() == "request" for rec in caplog.records):
            assert time.monotonic() < deadline, "no access log line"
            time.sleep(0.01)
    assert r.status_code == 200
    lines = [JsonLogFormatter().format(rec) for rec in caplog.records]
    entry = next(json.loads(x) for x in lines if '"request"' in x)
    assert entry["request_id"] == r.headers["x-request-id"]
    assert entry["tenant"] == "globex" and entry["key"] == "globex-admin"
    assert entry["status"] == 200
    assert all(GLOBEX not in x for x in lines)


def test_open_server_limits_each_client_separately() -> None:
    from glm_agent.serving import KeyRing
    from glm_agent.serving._state import _OPEN_KEY

    ring = KeyRing([], RateLimit(requests_per_minute=1, burst=1))
    assert ring.open
    assert ring.wait(_OPEN_KEY, "10.0.0.1") == 0.0
    assert ring.wait(_OPEN_KEY, "10.0.0.1") > 30  # one request a minute
    assert ring.wait(_OPEN_KEY, "10.0.0.2") == 0.0
