"""`mcp:` in YAML tool registries and agent.yaml files, and `glm-agent tools list / call` on
MCP-backed registries."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from pathlib import Path

import pytest
from mcp_harness import PYTHON_SERVER, TEST_SERVER, node_tool
from typer.testing import CliRunner

from glm_agent.agent_config import load_agent
from glm_agent.cli._tools import app as tools_app
from glm_agent.exceptions import ConfigError, ToolServerError
from glm_agent.tools import MCPServer, load_registry


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    """A registry with the SDK test server (its script beside the file, so a relative argument)
    and the npm reference server (an environment variable passed to it)."""
    shutil.copy(TEST_SERVER, tmp_path / "server.py")
    return _write(
        tmp_path / "tools.yaml",
        f"""
        version: 1
        mcp:
          shop:
            command: {PYTHON_SERVER[0]}
            args: [server.py]
            allowed_tools: [add, echo, hang]
            policy: {{timeout: 5}}
            policies:
              hang: {{timeout: 0.3}}
          everything:
            command: {node_tool("mcp-server-everything")}
            prefix: ev
            allowed_tools: [get-env, get-sum]
            env: {{SHOP_TOKEN: "${{SHOP_TOKEN}}"}}
        environments:
          prod:
            mcp:
              shop: {{prefix: prod}}
        """,
    )


def test_registry_mcp_entries(registry_file: Path) -> None:
    registry = load_registry(registry_file, env={"SHOP_TOKEN": "tok-123"})
    shop, ev = registry.tool_sources
    assert isinstance(shop, MCPServer) and shop.spec.cwd == str(registry_file.parent)
    assert shop.tools == {}  # loading starts nothing

    async def go() -> None:
        async with registry:
            assert registry.names == ["add", "echo", "hang", "ev_get-env", "ev_get-sum"]
            assert registry.get("add").policy.timeout == 5
            assert registry.get("hang").policy.timeout == 0.3
            assert "tok-123" in await registry.get("ev_get-env").run({})
        assert not shop.running and not ev.running

    asyncio.run(go())
    prod = load_registry(registry_file, environment="prod", env={"SHOP_TOKEN": "x"})
    assert prod.tool_sources[0].spec.prefix == "prod"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entry", "message", "line", "key"),
    [
        ("shop: {comand: x}", "unknown key 'comand'; valid keys: command, args, env", 3, "comand"),
        ("shop: {command: x, url: 'http://h/mcp'}", "give exactly one of 'command'", 3, "shop"),
        ("shop: {url: 'ftp://h'}", "url must start with http:// or https://", 3, "shop"),
        ("shop: {command: x, env: {T: '${NOPE}'}}", "'NOPE' is not set", 3, "mcp.shop.env.T"),
        ("shop: {command: x, policy: {timeout: -1}}", "greater than 0", 3, "timeout"),
        ("shop: {command: x, prefix: 'a b'}", "should match pattern", 3, "prefix"),
        ("'bad name': {command: x}", "should match pattern", 3, "mcp"),
    ],
)
def test_bad_mcp_entries_point_at_file_line_and_key(
    tmp_path: Path, entry: str, message: str, line: int, key: str
) -> None:
    path = _write(tmp_path / "tools.yaml", f"version: 1\nmcp:\n  {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_registry(path, env={})
    error = caught.value
    assert message in str(error)
    assert (error.path, error.line) == (str(path), line)
    assert key in (error.key or "")


def test_server_names_are_unique_across_includes(tmp_path: Path) -> None:
    _write(tmp_path / "more.yaml", "version: 1\nmcp:\n  shop: {command: b}\n")
    root = _write(
        tmp_path / "tools.yaml",
        "version: 1\ninclude: [more.yaml]\nmcp:\n  shop: {command: a}\n",
    )
    with pytest.raises(ConfigError, match="duplicate MCP server name 'shop', first defined at"):
        load_registry(root)
    bad_env = _write(
        tmp_path / "env.yaml",
        "version: 1\nmcp:\n  shop: {command: a}\nenvironments:\n  prod: {mcp: {shp: {}}}\n",
    )
    with pytest.raises(ConfigError, match="unknown MCP server 'shp'; servers: shop"):
        load_registry(bad_env, environment="prod")


def test_agent_yaml_gets_mcp_tools_from_itself_and_its_registries(
    tmp_path: Path, registry_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "t")
    _write(
        tmp_path / "scripted.py",
        """
        from glm_agent.messages import AssistantMessage, ToolCall, ToolMessage

        def turn(messages, info):
            if isinstance(messages[-1], ToolMessage):
                return "sum: " + messages[-1].content
            assert "direct_pid" in info.tool_names and "add" in info.tool_names
            return AssistantMessage(tool_calls=(ToolCall.from_args("add", {"a": 4, "b": 5}),))
        """,
    )
    agent_file = _write(
        tmp_path / "agent.yaml",
        f"""
        name: shopper
        model: {{function: scripted:turn}}
        memory: none
        tools: [tools.yaml]
        mcp:
          direct: {{command: {PYTHON_SERVER[0]}, args: [server.py], prefix: direct}}
        """,
    )
    agent = load_agent(agent_file)

    async def go() -> None:
        try:
            result = await agent.arun("add 4 and 5", metadata={})
            assert result.output == "sum: 9"
        finally:
            await agent.aclose()
        assert not any(s.running for s in agent.tools.tool_sources)  # type: ignore[attr-defined]

    asyncio.run(go())


def test_tools_cli_lists_and_calls_mcp_tools(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "tools.yaml",
        f"""
        version: 1
        mcp:
          everything:
            command: {node_tool("mcp-server-everything")}
            prefix: ev
            allowed_tools: [get-sum, trigger-long-running-operation]
            policies:
              trigger-long-running-operation: {{timeout: 0.3}}
        """,
    )
    runner = CliRunner()
    listed = runner.invoke(tools_app, ["list", "-r", str(path)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0] == (
        "ev_get-sum\tmcp:everything\tReturns the sum of two numbers"
    )
    called = runner.invoke(
        tools_app, ["call", "ev_get-sum", "-a", '{"a": 1, "b": 2}', "-r", str(path)]
    )
    assert called.exit_code == 0 and called.output.strip() == "The sum of 1 and 2 is 3."
    bad = runner.invoke(tools_app, ["call", "ev_get-sum", "-a", '{"a": "x"}', "-r", str(path)])
    assert bad.exit_code == 1
    assert "tool error: invalid arguments for tool 'ev_get-sum'" in bad.output
    long = runner.invoke(tools_app, ["call", "ev_trigger-long-running-operation", "-r", str(path)])
    assert long.exit_code == 1
    assert "'ev_trigger-long-running-operation' timed out after 0.3 s" in long.output
    valid = runner.invoke(tools_app, ["validate", "-r", str(path)])
    assert "ok: 0 tool(s) and 1 MCP server(s)" in valid.output


def test_tools_cli_names_a_missing_server(tmp_path: Path) -> None:
    path = _write(tmp_path / "tools.yaml", "version: 1\nmcp:\n  gone: {command: no-such-mcp}\n")
    result = CliRunner().invoke(tools_app, ["list", "-r", str(path)])
    assert isinstance(result.exception, ToolServerError)
    assert "cannot start command 'no-such-mcp': not found" in str(result.exception)
