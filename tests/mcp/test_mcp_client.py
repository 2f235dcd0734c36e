"""MCP servers as tool sources over stdio: the npm reference servers and a server written with the
Python SDK, through `MCPServer`, `ToolRegistry` and real agent runs (a scripted FunctionModel)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_harness import (
    PYTHON_SERVER,
    call_then_answer,
    correcting,
    node_tool,
    tool_messages,
)

from glm_agent import Agent, FunctionModel
from glm_agent._sync_bridge import run_sync
from glm_agent.exceptions import DuplicateToolError, ToolServerError, UserError
from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolMessage
from glm_agent.models.function import AgentInfo
from glm_agent.tools import MCPServer, ToolPolicy, ToolRegistry


def python_server(name: str = "py", **options: Any) -> MCPServer:
    return MCPServer(name, command=PYTHON_SERVER[0], args=PYTHON_SERVER[1:], **options)


@pytest.fixture(scope="module")
def shared() -> Iterator[MCPServer]:
    """One SDK test server for the tests that leave it as they found it. It lives on the sync
    bridge's loop (`run_sync`), which outlives each test, so it starts once for them all."""
    py = python_server(
        "shared",
        policies={"hang": ToolPolicy(timeout=0.5), "divide": ToolPolicy(max_retries=1)},
    )
    run_sync(py.start())
    yield py
    run_sync(py.aclose())


def everything(**options: Any) -> MCPServer:
    return MCPServer("everything", command=node_tool("mcp-server-everything"), **options)


def agent_with(turn: Callable[..., Any], *servers: MCPServer) -> Agent[str]:
    return Agent(FunctionModel(turn), tools=list(servers))


async def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_reference_servers_tools_are_listed_with_their_schemas(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the tracking number is ZX-77\n")
    fs = MCPServer(
        "files",
        command=node_tool("mcp-server-filesystem"),
        args=[str(tmp_path)],
        prefix="fs",
        allowed_tools=["read_text_file", "list_directory"],
    )
    ev = everything(prefix="ev")

    async def go() -> None:
        registry = ToolRegistry([fs, ev])
        assert registry.names == []  # nothing starts before a run needs it
        assert not fs.running
        await registry.ready()
        try:
            assert set(fs.tools) == {"fs_read_text_file", "fs_list_directory"}
            assert {"ev_echo", "ev_get-sum", "ev_get-tiny-image"} <= set(registry.names)
            params = registry.get("ev_get-sum").definition.parameters
            assert params["required"] == ["a", "b"] and "$schema" not in params
            notes = str(tmp_path / "notes.txt")
            text = await registry.get("fs_read_text_file").run({"path": notes})
            assert "ZX-77" in text
            assert await registry.get("ev_echo").run({"message": "hi"}) == "Echo: hi"
            # Embedded resources in full, links to resources with their URI.
            reference = {"resourceType": "Text", "resourceId": 1}
            embedded = await registry.get("ev_get-resource-reference").run(reference)
            assert (
                "[resource <demo://resource/dynamic/text/1>, text/plain]\n"
                "Resource 1: This is a plaintext resource"
            ) in embedded
            links = await registry.get("ev_get-resource-links").run({"count": 2})
            assert "[resource link: Text Resource 2 <demo://resource/dynamic/text/2>" in links
            # Structured content comes back as data (the model reads it as JSON).
            weather = await registry.get("ev_get-structured-content").run({"location": "Chicago"})
            assert set(weather) == {"temperature", "conditions", "humidity"}
        finally:
            await registry.aclose()
        assert not fs.running and not ev.running

    asyncio.run(go())


def test_tools_changed_notification_refreshes_the_list() -> None:
    async def go() -> None:
        # The Python SDK server speaks the 2026-07-28 protocol: changes arrive on a
        # subscriptions/listen stream.
        py = python_server()
        # The npm server speaks 2025-11-25: it registers more tools once initialised and says so
        # with notifications/tools/list_changed.
        ev = everything(prefix="ev")
        registry = ToolRegistry([py, ev])
        try:
            await registry.ready()
            assert "late" not in registry
            assert await registry.get("grow").run({}) == "grown"
            await _eventually(lambda: "late" in registry)
            assert await registry.get("late").run({"text": "abc"}) == "ABC"
            assert py.listings >= 2
            await _eventually(lambda: ev.listings >= 2)
            assert "ev_simulate-research-query" in registry
        finally:
            await registry.aclose()

    asyncio.run(go())


def test_argument_errors_are_fed_back_to_the_model(shared: MCPServer) -> None:
    ev = everything()

    async def go() -> None:
        try:
            # Caught against the server's inputSchema before the call.
            agent = agent_with(correcting("get-sum", {"a": "two", "b": 3}, {"a": 2, "b": 3}), ev)
            result = await agent.arun("add two and three")
            first, second = tool_messages(result.messages)
            assert first.is_error and "'two' is not of type 'number'" in first.content
            assert not second.is_error and "5" in second.content
            assert result.output.startswith("result: The sum of 2 and 3 is 5")
        finally:
            await ev.aclose()
        # Refused by the server itself (isError): the model is told why and corrects it.
        agent = agent_with(correcting("divide", {"a": 1, "b": 0}, {"a": 1, "b": 4}), shared)
        result = await agent.arun("divide")
        first, second = tool_messages(result.messages)
        assert first.is_error and "b must not be 0" in first.content
        assert second.content == "0.25"

    run_sync(go())


def test_a_hanging_tool_times_out_and_the_server_stays_usable(shared: MCPServer) -> None:
    async def go() -> None:
        result = await agent_with(call_then_answer("hang", {}), shared).arun("wait")
        (message,) = tool_messages(result.messages)
        assert message.is_error and message.content == "tool 'hang' timed out after 0.5 s"
        pid = await shared.tools["pid"].run({})
        assert await shared.tools["add"].run({"a": 1, "b": 2}) == "3"
        assert await shared.tools["pid"].run({}) == pid and shared.restarts == 0

    run_sync(go())


@pytest.mark.slow
def test_a_crash_mid_call_is_reported_and_the_server_restarts() -> None:
    py = python_server()

    async def go() -> None:
        try:
            await py.start()
            before = await py.tools["pid"].run({})
            result = await agent_with(call_then_answer("crash", {}), py).arun("crash it")
            (message,) = tool_messages(result.messages)
            assert message.is_error
            # The model hears that the call failed, with a reference; what went wrong (the
            # server, the call, its stderr) is for the operator: in the record and the log.
            assert json.loads(message.content)["error"] == "tool_failed"
            (record,) = [r for step in result.steps for r in step.tool_calls]
            assert json.loads(message.content)["reference"] in record.detail
            assert "MCP server 'py'" in record.detail
            assert "ended during the call to 'crash'" in record.detail
            assert "test server starting" in record.detail
            assert not py.running
            # The next run starts it again.
            result = await agent_with(call_then_answer("pid", {}), py).arun("pid?")
            after = int(tool_messages(result.messages)[0].content)
            assert after != int(before) and py.restarts == 1
            # A server that dies between calls is noticed when its output ends, and the next
            # run starts it again without an error.
            os.kill(after, signal.SIGKILL)
            await _eventually(lambda: not py.running)
            result = await agent_with(call_then_answer("add", {"a": 1, "b": 1}), py).arun("1+1")
            assert result.output == "tool said: 2" and py.restarts == 2
        finally:
            await py.aclose()

    asyncio.run(go())


def test_an_idempotent_tool_is_tried_again_after_a_crash(tmp_path: Path) -> None:
    py = python_server(policies={"crash_once": ToolPolicy(idempotent=True)})
    marker = str(tmp_path / "crashed")

    async def go() -> None:
        try:
            await py.start()
            # The first call kills the process; the tool is safe to repeat, so it is called
            # again on a fresh start instead of failing the run.
            assert await py.tools["crash_once"].run({"marker": marker}) == "survived"
            assert py.restarts == 1
            with pytest.raises(ToolServerError, match="ended during the call to 'crash'"):
                await py.tools["crash"].run({})  # not idempotent: the error reaches the caller
        finally:
            await py.aclose()

    asyncio.run(go())


def test_a_missing_server_is_a_clear_error_naming_the_command() -> None:
    missing = MCPServer("orders", command="glm-agent-no-such-server", args=["--port", "1"])
    dies = MCPServer("dies", command=sys.executable, args=["-c", "raise SystemExit('no config')"])

    async def go() -> None:
        with pytest.raises(ToolServerError) as caught:
            await agent_with(call_then_answer("x", {}), missing).arun("hi")
        assert str(caught.value) == (
            "MCP server 'orders': cannot start command 'glm-agent-no-such-server': not found (is "
            "it installed and on PATH?); the server is started as: glm-agent-no-such-server "
            "--port 1"
        )
        nowhere = MCPServer("x", command=sys.executable, cwd="/no/such/folder")
        with pytest.raises(ToolServerError, match="working directory '/no/such/folder' does not"):
            await nowhere.start()
        with pytest.raises(ToolServerError, match="exited before it answered") as caught:
            await dies.start()
        assert "no config" in str(caught.value)

    asyncio.run(go())


def test_concurrent_runs_share_one_server_process(shared: MCPServer) -> None:
    async def go() -> None:
        agent = agent_with(call_then_answer("pid", {}), shared)
        results = await asyncio.gather(*(agent.arun(f"run {i}") for i in range(8)))
        pids = {tool_messages(r.messages)[0].content for r in results}
        assert len(pids) == 1 and shared.restarts == 0
        slow = [shared.tools["slow"].run({"seconds": 0.5}) for _ in range(6)]
        started = asyncio.get_running_loop().time()
        assert await asyncio.gather(*slow) == ["slept 0.5"] * 6
        assert asyncio.get_running_loop().time() - started < 2.5  # not one after another

    run_sync(go())


def test_image_results_become_text_the_model_can_read(shared: MCPServer) -> None:
    ev = everything()

    async def go() -> None:
        try:
            result = await agent_with(call_then_answer("get-tiny-image", {}), ev).arun("logo")
            content = tool_messages(result.messages)[0].content
            assert "[image: image/png, 4033 bytes]" in content
            assert "The image above is the MCP logo." in content
        finally:
            await ev.aclose()
        picture = await shared.tools["image"].run({})
        assert picture == "a one-pixel picture\n[image: image/png, 66 bytes]"

    run_sync(go())


def test_policies_apply_to_mcp_tools() -> None:
    py = python_server(
        policy=ToolPolicy(timeout=5, redact=["text"]),
        policies={"echo": ToolPolicy(requires_approval=True), "add": ToolPolicy(rate_limit=4)},
    )

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if isinstance(messages[-1], ToolMessage):
            return "done"
        return AssistantMessage(tool_calls=(ToolCall.from_args("echo", {"text": "secret"}),))

    async def go() -> None:
        try:
            result = await agent_with(turn, py).arun("echo")
            assert result.status == "deferred"  # approval, as for any tool
            echo = py.tools["echo"]
            assert echo.policy.timeout == 5  # the server's policy, with the tool's own keys
            assert echo.redacted({"text": "secret"}) == {"text": "***"}
            started = asyncio.get_running_loop().time()
            await asyncio.gather(*(py.tools["add"].run({"a": i, "b": 0}) for i in range(6)))
            assert asyncio.get_running_loop().time() - started >= 0.4  # 4 a second, burst 4
        finally:
            await py.aclose()

    asyncio.run(go())


def test_retry_budget_applies_to_failing_mcp_tools(shared: MCPServer) -> None:
    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage:
        return AssistantMessage(tool_calls=(ToolCall.from_args("divide", {"a": 1, "b": 0}),))

    from glm_agent.exceptions import RetriesExhausted

    with pytest.raises(RetriesExhausted, match="tool 'divide' failed 2 times"):
        run_sync(agent_with(turn, shared).arun("divide by zero"))


def test_allowed_tools_and_name_clashes() -> None:
    async def go() -> None:
        typo = python_server(allowed_tools=["ad"])
        wrong = "has no tool 'ad' \\(named in allowed_tools\\); did you mean 'add'"
        with pytest.raises(UserError, match=wrong):
            await typo.start()
        assert not typo.running
        one, two = python_server("one"), python_server("two", allowed_tools=["add", "pid"])
        registry = ToolRegistry([one, two])
        try:
            with pytest.raises(DuplicateToolError) as caught:
                await registry.ready()
            assert "from MCP server 'one' and from MCP server 'two'" in str(caught.value)
            assert "give an MCP server a `prefix`" in str(caught.value)
        finally:
            await registry.aclose()

        def echo(text: str) -> str:
            """A local echo.

            Args:
                text: What to say back.
            """
            return text

        mixed = ToolRegistry([echo, python_server("p", allowed_tools=["echo"])])
        try:
            with pytest.raises(DuplicateToolError, match="from the registry's own tools and"):
                await mixed.ready()
        finally:
            await mixed.aclose()

    asyncio.run(go())


def test_agent_aclose_stops_its_servers() -> None:
    py = python_server()

    async def go() -> None:
        agent = agent_with(call_then_answer("add", {"a": 1, "b": 1}), py)
        result = await agent.arun("1+1")
        assert result.output == "tool said: 2"
        assert py.running
        await agent.aclose()
        assert not py.running

    asyncio.run(go())


def test_sync_runs_share_the_server_on_glm_agents_loop() -> None:
    py = python_server()
    agent = agent_with(call_then_answer("pid", {}), py)
    try:
        first = agent.run("pid?")  # on the sync bridge's loop, where the server then lives
        second = agent.run("again")
        assert tool_messages(first.messages)[0].content == tool_messages(second.messages)[0].content
        assert py.running and py.restarts == 0
    finally:
        agent.close()
    assert not py.running
