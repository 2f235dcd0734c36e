"""The retry policy (Retry-After, backoff, what is retried) and the SSE decoder."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from glm_agent.exceptions import ModelError, ModelHTTPError
from glm_agent.models._retry import RetryPolicy, retry_after_seconds
from glm_agent.models._sse import ServerSentEvent, SSEDecoder


def response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text='{"error": "busy"}')


def test_retry_after_forms() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_seconds(httpx.Headers({"Retry-After": future})) or 0) <= 30
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers()) is None


def test_status_policy() -> None:
    policy = RetryPolicy(max_retries=2, backoff=1.0, max_backoff=3.0, seed=1)
    assert policy.after_status(0, response(429, **{"Retry-After": "7"}), "m") == 7.0
    for status in (408, 409, 500, 502, 503):
        assert 0.5 <= policy.after_status(0, response(status), "m") <= 1.0
    assert 1.0 <= policy.after_status(1, response(503), "m") <= 2.0  # attempt 1: 2 s base
    with pytest.raises(ModelHTTPError) as info:
        policy.after_status(2, response(503), "glm-4.5")  # out of retries
    assert (info.value.status_code, info.value.body, info.value.model) == (
        503,
        '{"error": "busy"}',
        "glm-4.5",
    )
    for status in (400, 401, 404, 422):
        with pytest.raises(ModelHTTPError):
            policy.after_status(0, response(status), "m")
    with pytest.raises(ModelHTTPError):  # asks for longer than max_retry_after
        policy.after_status(0, response(429, **{"Retry-After": "3600"}), "m")


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=10, backoff=0.5, max_backoff=4.0, seed=0)
    delays = [policy.backoff_delay(n) for n in range(8)]
    for n, d in enumerate(delays):
        base = min(4.0, 0.5 * 2**n)
        assert base / 2 <= d <= base
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jittered, not a fixed wait


def test_transport_error_policy() -> None:
    policy = RetryPolicy(max_retries=1, backoff=0.1)
    assert policy.after_error(0, httpx.ConnectError("refused"), "http://x") > 0
    assert policy.after_error(0, httpx.RemoteProtocolError("cut"), "http://x") > 0
    with pytest.raises(ModelError, match="after 2 attempt"):
        policy.after_error(1, httpx.ConnectError("refused"), "http://x")
    with pytest.raises(ModelError, match="timed out"):
        policy.after_error(0, httpx.ReadTimeout("slow"), "http://x")
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_sse_decoder() -> None:
    d = SSEDecoder()
    lines = [
        ": keep-alive",
        "event: error",
        'data: {"a":',
        "data:  1}",
        "",
        "id: 7",
        "retry: 10",
        "",
        "data: [DONE]",
    ]
    events = [e for e in map(d.feed_line, lines) if e is not None]
    assert events == [ServerSentEvent("error", '{"a":\n 1}')]
    assert d.flush() == ServerSentEvent("message", "[DONE]")
    assert d.flush() is None
