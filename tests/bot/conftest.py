"""Support-bot fixtures (the helpers live in bot_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bot_harness import Shop, live_server, make_bot

from glm_agent.serving.bot import SupportBot


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
def bot(tmp_path: Path, shop: Shop) -> Iterator[SupportBot]:
    b = make_bot(tmp_path, shop)
    yield b
    b.close()


@pytest.fixture
def server(bot: SupportBot) -> Iterator[str]:
    from glm_agent.serving.bot import create_bot_app

    with live_server(create_bot_app(bot, heartbeat=0.5)) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=20) as c:
        yield c
