"""Finding 5 (medium): HTTP tools and secrets in error text. A path argument of `..` rewrote
the request path (the tool's bearer token went to another endpoint); URL user-info and tokens
appeared in errors sent back to the model; a session-store URL with a password was printed whole
in a startup error. Path parameters are now percent-encoded with `.`/`..` refused, and every
error text passes one scrubber (`glm_agent._scrub`)."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from glm_agent._scrub import scrub
from glm_agent.cli import main
from glm_agent.exceptions import ModelRetry, RunError
from glm_agent.memory import open_store
from glm_agent.tools import YamlToolRegistry, load_registry

TOKEN = "tool-bearer-token-9f8e7d"
PASSWORD = "hunter2-password"


class Upstream:
    """A real HTTP API on 127.0.0.1 that records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.app = FastAPI()

        @self.app.api_route("/{path:path}", methods=["GET", "POST"])
        async def anything(path: str, request: Request) -> Any:
            self.seen.append((request.scope["path"], request.headers.get("authorization")))
            if path.startswith("api/orders/"):
                return {"order": path.removeprefix("api/orders/")}
            if path == "echo-auth":  # a careless API that quotes the credentials it got
                return JSONResponse(
                    {"error": f"bad auth {request.headers.get('authorization')}"}, 400
                )
            return JSONResponse({"error": "boom"}, 500)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, int]]:
    import uvicorn

    api = Upstream()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield api, port
    server.should_exit = True
    thread.join(5)


def registry(tmp_path: Path, url: str) -> YamlToolRegistry:
    text = f"""
version: 1
tools:
  - name: get_order
    description: Look up an order.
    parameters:
      type: object
      properties: {{order_id: {{type: string, description: The order number}}}}
      required: [order_id]
    http:
      url: {url}
      auth: {{type: bearer, token: "${{SHOP_TOKEN}}"}}
      retries: 0
"""
    (tmp_path / "tools.yaml").write_text(text)
    return load_registry(tmp_path / "tools.yaml", env={"SHOP_TOKEN": TOKEN})


def call(reg: YamlToolRegistry, args: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with reg:
            return await reg.get("get_order").run(args)

    return asyncio.run(go())


@pytest.mark.parametrize("order_id", ["..", ".", " .. ", ""])
def test_dot_segments_cannot_move_the_request_off_its_endpoint(
    tmp_path: Path, upstream: tuple[Upstream, int], order_id: str
) -> None:
    api, port = upstream
    api.seen.clear()
    reg = registry(tmp_path, f"http://127.0.0.1:{port}/api/orders/{{order_id}}")
    with pytest.raises(ModelRetry, match="order_id"):
        call(reg, {"order_id": order_id})
    assert api.seen == []  # nothing was sent, so the token went nowhere


@pytest.mark.parametrize("order_id", ["../admin", "..%2fadmin", "a/../../admin", "%2e%2e", "?x=1"])
def test_other_tricks_stay_one_encoded_segment(
    tmp_path: Path, upstream: tuple[Upstream, int], order_id: str
) -> None:
    api, port = upstream
    api.seen.clear()
    reg = registry(tmp_path, f"http://127.0.0.1:{port}/api/orders/{{order_id}}")
    assert call(reg, {"order_id": order_id}) == {"order": order_id}
    assert [p for p, _ in api.seen] == [f"/api/orders/{order_id}"]


def test_errors_sent_to_the_model_hold_no_credentials(
    tmp_path: Path, upstream: tuple[Upstream, int]
) -> None:
    _, port = upstream
    for url in (
        f"http://shop:{PASSWORD}@127.0.0.1:{port}/fail?api_key={PASSWORD}",
        f"http://127.0.0.1:{port}/echo-auth?token={PASSWORD}",
        f"http://shop:{PASSWORD}@127.0.0.1:{free_port()}/down",  # connection refused
    ):
        with pytest.raises(ModelRetry) as e:
            call(
                registry(tmp_path, url + "&id={order_id}" if "?" in url else url), {"order_id": "1"}
            )
        message = e.value.message
        assert "HTTP" in message or "failed" in message  # still says what went wrong
        assert PASSWORD not in message and TOKEN not in message, message


def test_the_scrubber() -> None:
    text = (
        f"postgresql://root:{PASSWORD}@db/x failed; GET https://u:{PASSWORD}@h/p?token=abc123&q=1 "
        f"Authorization: Bearer {TOKEN} password={PASSWORD}"
    )
    out = scrub(text, [TOKEN])
    assert PASSWORD not in out and TOKEN not in out and "abc123" not in out
    assert "postgresql://***@db/x" in out and "q=1" in out


def test_a_session_store_url_with_a_password_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://root:{PASSWORD}@127.0.0.1:{free_port()}/test?open_timeout=1"
    store = open_store(url)
    with pytest.raises(RunError) as e:
        asyncio.run(store.read("t", "s"))
    assert PASSWORD not in str(e.value) and "cannot connect to the session store" in str(e.value)
    # The same through the CLI, as a user starting the agent would see it.
    (tmp_path / "agent.yaml").write_text(f"name: a\nmodel: test\nmemory: {url}\n")
    monkeypatch.setattr(
        sys, "argv", ["glm-agent", "run", str(tmp_path / "agent.yaml"), "hi", "-s", "s1"]
    )
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "session store" in err, err
    assert PASSWORD not in err
