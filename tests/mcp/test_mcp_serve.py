"""glm-agent as an MCP server, checked by the official Python client and by the MCP Inspector's
CLI: a registry's tools over stdio, an agent and a knowledge base over Streamable HTTP behind
API keys (each key's tenant scopes sessions, searches and resources)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_harness import free_port, node_tool

from glm_agent import Agent, FunctionModel
from glm_agent.memory import SQLiteStore
from glm_agent.messages import AssistantMessage, Message, ToolMessage, UserMessage
from glm_agent.models.function import AgentInfo
from glm_agent.retrieval import KnowledgeBase, TestEmbedder
from glm_agent.serving import ApiKey, ServerConfig, generate_key, hash_key
from glm_agent.serving._mcp_http import mcp_http_app
from glm_agent.serving._mcp_server import MCPExposure

GLM_AGENT = str(Path(sys.executable).with_name("glm-agent"))
ACME, GLOBEX, CHAT_ONLY = generate_key(), generate_key(), generate_key()

SHOP = '''
def order_status(order_id: str) -> dict:
    """Look up an order.

    Args:
        order_id: The order number, e.g. A-1042.
    """
    if order_id != "A-1042":
        raise ValueError(f"no order {order_id}")
    return {"order_id": order_id, "status": "shipped"}


def refund(order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order number.
    """
    return "refunded"
'''

REGISTRY = """
version: 1
tools:
  - name: order_status
    python: shop:order_status
  - name: refund
    python: shop:refund
    policy: {requires_approval: true}
"""


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    (tmp_path / "shop.py").write_text(SHOP)
    path = tmp_path / "tools.yaml"
    path.write_text(textwrap.dedent(REGISTRY))
    return path


def test_registry_over_stdio_with_the_official_client(registry_file: Path) -> None:
    from mcp import Client, MCPError, StdioServerParameters

    params = StdioServerParameters(command=GLM_AGENT, args=["mcp", "serve", str(registry_file)])

    async def go() -> None:
        async with Client(params) as client:
            listed = await client.list_tools()
            # Tools that need approval are not offered: nobody could approve a call over MCP.
            assert [t.name for t in listed.tools] == ["order_status"]
            assert listed.tools[0].input_schema["required"] == ["order_id"]
            ok = await client.call_tool("order_status", {"order_id": "A-1042"})
            assert not ok.is_error
            assert ok.structured_content == {"order_id": "A-1042", "status": "shipped"}
            assert json.loads(ok.content[0].text)["status"] == "shipped"  # type: ignore[union-attr]
            bad = await client.call_tool("order_status", {"order": "A-1042"})
            assert bad.is_error
            assert "missing required argument: 'order_id'" in bad.content[0].text  # type: ignore[union-attr]
            failed = await client.call_tool("order_status", {"order_id": "Z-1"})
            assert failed.is_error and "no order Z-1" in failed.content[0].text  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="unknown tool 'refund'; tools: order_status"):
                await client.call_tool("refund", {"order_id": "A-1042"})

    asyncio.run(go())


def _helpdesk_turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """Remembers a name told earlier in the session; searches the knowledge base on request."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return "found: " + last.content
    text = last.content if isinstance(last, UserMessage) else ""
    if text.startswith("search "):
        from glm_agent.messages import ToolCall

        call = ToolCall.from_args("search_knowledge", {"query": text[7:]})
        return AssistantMessage(tool_calls=(call,))
    users = [m.content for m in messages if isinstance(m, UserMessage)]
    names = [u[11:] for u in users if u.startswith("my name is ")]
    return f"You are {names[-1] if names else 'unknown'}."


@contextlib.contextmanager
def _live(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def helpdesk(tmp_path: Path) -> Iterator[str]:
    kb = KnowledgeBase(tmp_path / "kb", embedder=TestEmbedder(dim=64))
    kb.add_documents(
        [
            {
                "id": "acme-returns",
                "title": "ACME returns",
                "text": "ACME refunds in 30 days.",
                "metadata": {"tenant": "acme"},
            },
            {
                "id": "globex-returns",
                "title": "Globex returns",
                "text": "Globex refunds in 7 days.",
                "metadata": {"tenant": "globex"},
            },
            {"id": "shipping", "title": "Shipping", "text": "Parcels ship within 2 days."},
        ]
    )
    agent: Agent[str] = Agent(
        FunctionModel(_helpdesk_turn),
        name="helpdesk",
        knowledge=kb,
        memory=SQLiteStore(str(tmp_path / "sessions.db")),
    )
    keys = [
        ApiKey(hash=hash_key(ACME), tenant="acme", scopes=["runs"]),
        ApiKey(hash=hash_key(GLOBEX), tenant="globex", scopes=["runs", "chat"]),
        ApiKey(hash=hash_key(CHAT_ONLY), tenant="acme", scopes=["chat"]),
    ]
    exposure = MCPExposure(agents=[agent], knowledge={"helpdesk": kb})
    with _live(mcp_http_app(exposure, config=ServerConfig(keys=keys))) as url:
        yield url


def _client(url: str, key: str) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"})
    return http, Client(streamable_http_client(url, http_client=http))


async def _text(client: Any, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result
    return str(result.content[0].text)


def test_agent_and_knowledge_over_http_scoped_by_key(helpdesk: str) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    plain = httpx.post(helpdesk, json=hello, headers={"Accept": "application/json"})
    assert plain.status_code == 401 and plain.json()["error"]["code"] == "invalid_api_key"
    scoped = httpx.post(helpdesk, json=hello, headers={"Authorization": f"Bearer {CHAT_ONLY}"})
    assert scoped.status_code == 403 and "lacks the 'runs' scope" in scoped.text

    async def go() -> None:
        acme_http, acme = _client(helpdesk, ACME)
        globex_http, globex = _client(helpdesk, GLOBEX)
        async with acme_http, globex_http, acme, globex:
            names = [t.name for t in (await acme.list_tools()).tools]
            assert names == ["helpdesk", "search_helpdesk"]
            # The agent runs with its memory, per tenant: the same session id is another
            # conversation for another key.
            ask = {"message": "my name is Ada", "session_id": "s-1"}
            assert await _text(acme, "helpdesk", ask) == "You are Ada."
            again = {"message": "who am I?", "session_id": "s-1"}
            assert await _text(acme, "helpdesk", again) == "You are Ada."
            assert await _text(globex, "helpdesk", again) == "You are unknown."
            # The knowledge base: searched directly, or by the agent, within the tenant.
            found = await _text(acme, "search_helpdesk", {"query": "refunds days"})
            assert "ACME refunds in 30 days" in found and "Globex" not in found
            by_agent = await _text(globex, "helpdesk", {"message": "search refunds days"})
            assert "Globex refunds in 7 days" in by_agent and "ACME" not in by_agent
            # Its documents as resources, the tenant's own and the shared ones.
            listed = await acme.list_resources()
            titles = sorted(r.name for r in listed.resources)
            assert titles == ["ACME returns", "Shipping"]
            uri = next(str(r.uri) for r in listed.resources if r.name == "ACME returns")
            read = await acme.read_resource(uri)
            assert read.contents[0].text == "ACME refunds in 30 days."  # type: ignore[union-attr]
            from mcp import MCPError

            with pytest.raises(MCPError, match="no such resource"):
                await globex.read_resource(uri)

    asyncio.run(go())


@pytest.mark.slow
def test_inspector_cli_checks_our_server(registry_file: Path, helpdesk: str) -> None:
    inspector = node_tool("mcp-inspector")

    def inspect(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [inspector, "--cli", *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr + done.stdout
        return dict(json.loads(done.stdout[done.stdout.index("{") :]))

    serve = [GLM_AGENT, "mcp", "serve", str(registry_file)]
    listed = inspect(*serve, "--method", "tools/list")
    assert [t["name"] for t in listed["tools"]] == ["order_status"]
    called = inspect(
        *serve,
        "--method",
        "tools/call",
        "--tool-name",
        "order_status",
        "--tool-arg",
        "order_id=A-1042",
    )
    assert called["structuredContent"] == {"order_id": "A-1042", "status": "shipped"}
    over_http = inspect(
        helpdesk,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {ACME}",
        "--method",
        "tools/call",
        "--tool-name",
        "search_helpdesk",
        "--tool-arg",
        "query=refunds",
    )
    assert "ACME refunds in 30 days" in over_http["content"][0]["text"]


def test_the_http_server_serves_its_agents_over_mcp_and_stops_their_servers(
    tmp_path: Path,
) -> None:
    from mcp_harness import PYTHON_SERVER, call_then_answer

    from glm_agent.serving import create_app
    from glm_agent.tools import MCPServer

    tools = MCPServer("calc", command=PYTHON_SERVER[0], args=PYTHON_SERVER[1:])
    agent: Agent[str] = Agent(
        FunctionModel(call_then_answer("add", {"a": 20, "b": 22})), name="calc", tools=[tools]
    )
    keys = [ApiKey(hash=hash_key(ACME), tenant="acme", scopes=["runs"])]
    app = create_app([agent], config=ServerConfig(keys=keys, mcp=True))
    with _live(app) as url:
        assert httpx.get(url.removesuffix("/mcp") + "/healthz").status_code == 200
        anonymous = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert anonymous.status_code == 401

        async def go() -> None:
            http, client = _client(url, ACME)
            async with http, client:
                assert [t.name for t in (await client.list_tools()).tools] == ["calc"]
                assert await _text(client, "calc", {"message": "20+22"}) == "tool said: 42"

        asyncio.run(go())
        assert tools.running  # started by the run, on the server's loop
    assert not tools.running  # stopped with the server


@pytest.mark.slow
def test_customer_service_knowledge_reaches_a_second_agent_over_mcp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from glm_agent.agent_config import load_agent

    example = Path(__file__).resolve().parents[2] / "examples" / "customer-service"
    folder = tmp_path / "customer-service"
    shutil.copytree(example, folder, ignore=shutil.ignore_patterns(".glm-agent", "__pycache__"))
    # The test embedder (hashing, no model files) instead of the bundled MiniLM, for speed.
    KnowledgeBase(folder / ".glm-agent" / "kb", embedder="test").close()
    monkeypatch.setenv("CS_STORE_DB", str(folder / ".glm-agent" / "store.db"))
    monkeypatch.delenv("SUPPORT_SESSIONS_URL", raising=False)
    monkeypatch.setenv("PATH", f"{Path(GLM_AGENT).parent}:{os.environ['PATH']}")
    staff = load_agent(folder / "staff-assistant.yaml")

    async def go() -> None:
        try:
            result = await staff.arun("What is the warranty on cast iron pots?")
        finally:
            await staff.aclose()
        (searched,) = [m for m in result.messages if isinstance(m, ToolMessage)]
        assert searched.name == "search_knowledge" and "warranty-guide.pdf" in searched.content
        assert "five-year" in str(result.output)

    asyncio.run(go())
    # The support agent itself is not offered over MCP: the bot is its only door.
    from glm_agent.cli._mcp import exposure_from_file
    from glm_agent.exceptions import UserError

    with pytest.raises(UserError, match="reached through the bot only"):
        exposure_from_file(folder / "agent.yaml", expose=["agent"])


@pytest.mark.slow
def test_cli_serves_an_agent_yaml_over_http_with_its_keys(tmp_path: Path) -> None:
    from mcp_harness import server_process

    (tmp_path / "scripted.py").write_text(
        "from glm_agent.messages import UserMessage\n\n"
        "def turn(messages, info):\n"
        "    said = [m.content for m in messages if isinstance(m, UserMessage)]\n"
        "    return ' / '.join(said)\n"
    )
    (tmp_path / "agent.yaml").write_text(
        "name: echoer\n"
        "model: {function: scripted:turn}\n"
        f"server: {{keys: [{{hash: '{hash_key(ACME)}', tenant: acme, scopes: [runs]}}]}}\n"
    )
    port = free_port()
    command = [GLM_AGENT, "mcp", "serve", str(tmp_path / "agent.yaml"), "--transport", "http"]
    with server_process([*command, "--port", str(port)], port):
        url = f"http://127.0.0.1:{port}/mcp"
        assert httpx.post(url, json={"jsonrpc": "2.0", "id": 1}).status_code == 401

        async def go() -> None:
            http, client = _client(url, ACME)
            async with http, client:
                assert [t.name for t in (await client.list_tools()).tools] == ["echoer"]
                one = {"message": "hello", "session_id": "s"}
                assert await _text(client, "echoer", one) == "hello"
                two = {"message": "again", "session_id": "s"}
                assert await _text(client, "echoer", two) == "hello / again"  # its memory

        asyncio.run(go())
