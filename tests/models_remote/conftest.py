"""Fixtures of the models_remote tests: one fake OpenAI-protocol server for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from models_remote_server import FakeOpenAIServer, running_server


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAIServer]:
    """A real HTTP server on 127.0.0.1 speaking like vLLM and Zhipu (see models_remote_server)."""
    with running_server() as server:
        yield server
