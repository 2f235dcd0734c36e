"""`glm-agent serve` as a real process: SIGTERM ends an open stream cleanly, then the server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from serving_harness import free_port

SLOW_MODEL = """
import asyncio


async def slow(messages, info):
    yield "working"
    await asyncio.sleep(60)
    yield "never"
"""


def test_sigterm_ends_streams_then_the_server(tmp_path: Path) -> None:
    (tmp_path / "proc_slow_model.py").write_text(SLOW_MODEL, encoding="utf-8")
    (tmp_path / "agent.yaml").write_text(
        "name: slow\nmodel: {stream_function: proc_slow_model:slow}\nmemory: none\n",
        encoding="utf-8",
    )
    port = free_port()
    exe = Path(sys.executable).with_name("glm-agent")
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(exe), "serve", "agent.yaml", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            alive = proc.poll() is None and time.monotonic() < deadline
            assert alive, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        lines: list[str] = []
        first = threading.Event()

        def consume() -> None:
            body = {
                "model": "slow",
                "messages": [{"role": "user", "content": "go"}],
                "stream": True,
            }
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
                for line in r.iter_lines():
                    lines.append(line)
                    if "working" in line:
                        first.set()

        reader = threading.Thread(target=consume)
        reader.start()
        assert first.wait(10)
        proc.send_signal(signal.SIGTERM)
        reader.join(15)
        assert not reader.is_alive()
        # uvicorn re-raises the signal once it has shut down, as an unhandled SIGTERM would.
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    data = [line[6:] for line in lines if line.startswith("data: ")]
    assert json.loads(data[-2])["error"]["code"] == "shutting_down"
    assert data[-1] == "[DONE]"
