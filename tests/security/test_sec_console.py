"""Finding 3 (medium): the console. "Sign out" left the token valid for 12 h; scrypt ran on the
event loop (8 clients logging in pushed /healthz from 6 ms to seconds); logins were never
throttled; the answer's timing told whether a username exists."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import PASSWORD, Shop, console_login, live_server, make_bot

from glm_agent.serving.bot import SupportBot, create_bot_app
from glm_agent.serving.bot import _console as console_module


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    b = make_bot(tmp_path, shop)
    yield b
    b.close()


@pytest.fixture
def client(bot: SupportBot) -> Iterator[httpx.Client]:
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        yield c


def test_logout_revokes_the_token_on_the_server(client: httpx.Client) -> None:
    headers = console_login(client)
    token = headers["Authorization"].split()[1]
    assert client.get("/v1/console/queue", headers=headers).status_code == 200
    r = client.post("/v1/console/logout", headers=headers)
    assert r.status_code == 200 and r.json() == {"logged_out": True}
    # A copy of the token (another tab, a stolen cookie) is dead too.
    assert client.get("/v1/console/queue", headers=headers).status_code == 401
    r = client.get("/v1/console/queue", headers={"Cookie": f"console_token={token}"})
    assert r.status_code == 401
    assert client.post("/v1/console/logout", headers=headers).json() == {"logged_out": False}


def test_logout_by_cookie(client: httpx.Client) -> None:
    r = client.post("/v1/console/login", json={"username": "alice", "password": PASSWORD})
    token = r.json()["token"]
    assert client.cookies.get("console_token") == token
    r = client.post("/v1/console/logout")
    assert r.json() == {"logged_out": True}
    assert "console_token" in r.headers.get("set-cookie", "")  # the cookie is cleared
    r = client.get("/v1/console/queue", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


@pytest.fixture
def hashing(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every password check the login makes: on which thread, against which hash."""
    calls: list[dict[str, Any]] = []
    real = console_module.verify_password

    def spy(password: str, stored: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        calls.append({"on_loop": on_loop, "dummy": stored == console_module.DUMMY_HASH})
        return real(password, stored)

    monkeypatch.setattr(console_module, "verify_password", spy)
    return calls


def test_hashing_never_runs_on_the_event_loop(
    client: httpx.Client, hashing: list[dict[str, Any]]
) -> None:
    def attempt(i: int) -> int:
        body = {"username": "alice", "password": PASSWORD if i % 2 else "wrong"}
        return httpx.post(str(client.base_url) + "/v1/console/login", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, range(8)))
    assert set(codes) <= {200, 401, 429} and 200 in codes
    assert hashing and not any(c["on_loop"] for c in hashing)
    # The server kept answering other requests meanwhile.
    assert client.get("/healthz").status_code == 200


def test_an_unknown_user_costs_the_same_hash_and_gets_the_same_answer(
    client: httpx.Client, hashing: list[dict[str, Any]]
) -> None:
    unknown = client.post("/v1/console/login", json={"username": "mallory", "password": "x"})
    wrong = client.post("/v1/console/login", json={"username": "alice", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    # One scrypt check each: against the dummy hash (same cost) for the unknown name.
    assert [c["dummy"] for c in hashing] == [True, False]


def test_failed_logins_are_throttled_per_username_and_address(
    client: httpx.Client, bot: SupportBot
) -> None:
    for _ in range(bot.login_throttle.free):
        r = client.post("/v1/console/login", json={"username": "alice", "password": "guess"})
        assert r.status_code == 401
    # Now even the right password waits: a guesser cannot tell it found it.
    r = client.post("/v1/console/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "login_throttled"
    # Guessing other usernames from the same address is throttled as well.
    r = client.post("/v1/console/login", json={"username": "bob", "password": "bob-pass"})
    assert r.status_code == 429


def test_the_throttle_backs_off_and_forgets_after_a_good_login() -> None:
    from glm_agent.exceptions import TooManyRequestsError
    from glm_agent.serving.bot._throttle import LoginThrottle

    t = LoginThrottle(free=2, base=0.05, cap=1.0)
    t.failed("u", "1.1.1.1")
    t.check("u", "1.1.1.1")
    t.failed("u", "1.1.1.1")
    with pytest.raises(TooManyRequestsError):
        t.check("u", "2.2.2.2")  # the username waits, from any address
    threading.Event().wait(0.06)
    t.check("u", "2.2.2.2")
    t.succeeded("u", "2.2.2.2")
    t.check("u", "3.3.3.3")
