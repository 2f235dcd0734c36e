"""Fixtures of the serving tests (shared helpers live in serving_harness.py: a conftest.py
cannot be imported by name reliably when every test folder has one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_harness import live_server, make_agent, plain_model

from glm_agent import Agent


@pytest.fixture
def agent(tmp_path: Path) -> Agent[str]:
    return make_agent(tmp_path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """An open server (no keys) with the support agent and the plain model."""
    from glm_agent.serving import create_app

    app = create_app([make_agent(tmp_path)], models={"plain": plain_model()})
    with live_server(app) as url:
        yield url
