"""Shared helpers of the MCP tests: the reference servers installed by scripts/setup (npm ci),
the SDK-written test server, HTTP server processes on free ports, and scripted models."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from glm_agent.models.function import AgentInfo

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
TEST_SERVER = Path(__file__).with_name("mcp_test_server.py")
PYTHON_SERVER = [sys.executable, str(TEST_SERVER)]


def skip_or_fail(reason: str) -> None:
    """Skip, or fail where CI demands that these tests run (GLM_AGENT_REQUIRE_SERVICES=1)."""
    if os.environ.get("GLM_AGENT_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " and GLM_AGENT_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def node_tool(name: str) -> str:
    """The path of an npm-installed program (never downloaded here: scripts/setup runs npm ci)."""
    if shutil.which("node") is None:
        skip_or_fail("needs Node.js (apt-get install nodejs npm)")
    path = NODE_BIN / name
    if not path.exists():
        skip_or_fail(f"needs {path} (scripts/setup installs it with npm ci)")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


@contextlib.contextmanager
def server_process(
    command: Sequence[str], port: int, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run an HTTP server process until the block ends."""
    process = subprocess.Popen(
        list(command),
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, " ".join(command))
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def call_then_answer(tool: str, args: dict[str, object]) -> object:
    """A model that calls `tool` with `args` once, then answers with what the tool said."""

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return f"tool said: {last.content}"
        return AssistantMessage(tool_calls=(ToolCall.from_args(tool, args),))

    return turn


def correcting(tool: str, bad: dict[str, object], good: dict[str, object]) -> object:
    """A model that first calls `tool` with `bad` arguments and, told why they are wrong,
    calls it again with `good` ones."""

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        last = messages[-1]
        if isinstance(last, UserMessage):
            return AssistantMessage(tool_calls=(ToolCall.from_args(tool, bad),))
        assert isinstance(last, ToolMessage)
        if last.is_error:
            return AssistantMessage(tool_calls=(ToolCall.from_args(tool, good),))
        return f"result: {last.content}"

    return turn


def tool_messages(messages: Sequence[Message]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)
