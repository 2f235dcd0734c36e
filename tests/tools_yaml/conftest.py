"""Fixtures: a real HTTP server on 127.0.0.1 for the HTTP tools, and ../shared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tools_yaml_server import SHARED, Server, free_port, make_app


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The shop API on a free port of 127.0.0.1."""
    import uvicorn

    app = make_app()
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", app)
    srv.should_exit = True
    thread.join(5)


@pytest.fixture
def shared() -> Path:
    """../shared, or a skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared reference data at {SHARED}")
    return SHARED
