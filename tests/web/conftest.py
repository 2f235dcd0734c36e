"""The real support bot (FunctionModel agent) and the web front ends on a real uvicorn server in
a thread, and headless Chromium driven by Playwright's sync API."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from web_browser import AGENT_PASSWORD, AGENT_USER, CHROMIUM, CHROMIUM_ARGS
from web_shop import return_order, stream_answer

from glm_agent import Agent
from glm_agent.models import FunctionModel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_bot(tmp: Path) -> Any:
    """The support bot over the scripted shop agent, with one console account."""
    from glm_agent.serving.bot import HandoffConfig, SupportBot, SupportConfig, hash_password
    from glm_agent.serving.bot._config import SupportLimits

    agent = Agent(
        FunctionModel(stream_function=stream_answer, name="shop"), tools=[return_order], name="shop"
    )
    config = SupportConfig(
        limits=SupportLimits(conversations_per_minute=1e6, messages_per_minute=1e6, burst=10**6),
        database=str(tmp / "support.db"),
        console_accounts={AGENT_USER: hash_password(AGENT_PASSWORD)},
        # The demo page names no title: the widget shows the bot's own name.
        display_name={"zh": "Acme 客服", "en": "Acme Support"},
        # The scripted model would answer the summary prompt like a question.
        handoff=HandoffConfig(summary="extractive"),
    )
    return SupportBot(agent, config, base_dir=tmp)


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1:`port` in a thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
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
        thread.join(5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bot's API and the web routes on one app, served by uvicorn on 127.0.0.1."""
    from glm_agent.serving.bot import create_bot_app

    from fastapi.middleware.cors import CORSMiddleware  # isort: skip
    from fastapi.responses import HTMLResponse  # isort: skip

    bot = make_bot(tmp_path_factory.mktemp("web"))
    port = _free_port()
    app = create_bot_app(bot, heartbeat=2.0)
    # Sites embed the widget from their own origin: http://localhost:{port}/shop stands for
    # such a site (a real server, so Chromium's local-network checks see a loopback page).
    api = f"http://127.0.0.1:{port}"
    shop_page = (
        "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
        f'<script src="{api}/widget.js" data-server="{api}" data-title="Shop" async></script>'
        "</body></html>"
    )
    app.add_api_route("/shop", lambda: HTMLResponse(shop_page), include_in_schema=False)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[f"http://localhost:{port}"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "X-Customer-Token"],
    )
    with serve(app, port) as url:
        yield url


@pytest.fixture
def main_server(tmp_path: Path) -> Iterator[str]:
    """The main glm-agent server (`create_app`) serving a support bot, as `glm-agent serve`."""
    from glm_agent.serving import create_app

    bot = make_bot(tmp_path)
    bot.heartbeat = 2.0
    app = create_app([bot.agent], support=bot)
    try:
        with serve(app, _free_port()) as url:
            yield url
    finally:
        app.state.glm.request_shutdown()


def _skip_or_fail(reason: str) -> None:
    """Skip, or fail where CI demands the browser tests run (GLM_AGENT_REQUIRE_SERVICES=1)."""
    if os.environ.get("GLM_AGENT_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system package (never a downloaded build). Per module, so
    Playwright's own event loop never outlives the browser tests."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        _skip_or_fail(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("needs Playwright (pip install playwright; no `playwright install`)")
    from playwright.sync_api import expect

    # Generous waits: CI shares two cores between Chromium, the server and other work.
    expect.set_options(timeout=10_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Opens pages in fresh contexts (own localStorage and cookies); closes them afterwards."""
    contexts: list[Any] = []

    def open_page(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        options.setdefault("locale", "en-US")
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
