"""Registries to and from OpenAI JSON, GLM definitions, LangChain tools and OpenAPI; the CLI."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tools_yaml_server import TOKEN, Server
from typer.testing import CliRunner

from glm_agent.cli._tools import app
from glm_agent.exceptions import ConfigError, ModelRetry, ToolArgumentsError
from glm_agent.messages import ToolDefinition
from glm_agent.tools import (
    from_langchain_tools,
    load_registry,
    openapi_registry_spec,
    registry_from_openapi,
    to_langchain_tools,
    to_openai_tools,
    to_tool_definitions,
)

REGISTRY = """version: 1
tools:
  - name: lookup
    description: Look up a word.
    parameters:
      type: object
      properties:
        word: {type: string, description: The word}
        lang: {type: string, enum: [en, zh]}
      required: [word]
    http:
      url: BASE/echo
      method: POST
  - name: broken
    description: Always 500.
    parameters: {type: object, properties: {}}
    http: {url: BASE/status/500}
"""


@pytest.fixture
def reg_path(tmp_path: Path, server: Server) -> Path:
    path = tmp_path / "tools.yaml"
    path.write_text(REGISTRY.replace("BASE", server.url))
    return path


def test_openai_and_glm_exports(reg_path: Path) -> None:
    reg = load_registry(reg_path, env={})
    openai_tools = to_openai_tools(reg)
    assert [t["function"]["name"] for t in openai_tools] == ["lookup", "broken"]
    assert openai_tools[0]["type"] == "function"
    assert openai_tools[0]["function"]["parameters"]["required"] == ["word"]
    # Round trip through JSON text: the same GLM definitions come back.
    back = [ToolDefinition.from_openai(t) for t in json.loads(json.dumps(openai_tools))]
    assert back == to_tool_definitions(reg)


def test_langchain_export_runs_our_tool_and_reports_errors(reg_path: Path) -> None:
    reg = load_registry(reg_path, env={})
    lc_tools = {t.name: t for t in to_langchain_tools(reg)}
    assert lc_tools["lookup"].args["lang"]["enum"] == ["en", "zh"]

    async def go() -> tuple[Any, Any, Any]:
        async with reg:
            ok = await lc_tools["lookup"].ainvoke({"word": "cat", "lang": "en"})
            bad = await lc_tools["lookup"].ainvoke({"word": "cat", "lang": "fr"})
            down = await lc_tools["broken"].ainvoke({})
            return ok, bad, down

    ok, bad, down = asyncio.run(go())
    assert json.loads(ok)["json"] == {"word": "cat", "lang": "en"}
    assert "lang" in bad and "is not one of" in bad  # written back to the model, not raised
    assert "HTTP 500" in down
    # The blocking form runs in its own short-lived loop and leaves no connection open.
    assert json.loads(lc_tools["lookup"].invoke({"word": "dog"}))["json"] == {"word": "dog"}
    assert not reg.pool.is_open


def test_langchain_import() -> None:
    from langchain_core.tools import ToolException
    from langchain_core.tools import tool as lc_tool

    @lc_tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    @lc_tool
    def fail(reason: str) -> str:
        """Always fails."""
        raise ToolException(f"cannot: {reason}")

    reg = from_langchain_tools([multiply, fail])
    assert reg.names == ["multiply", "fail"]
    assert reg.get("multiply").definition.parameters["required"] == ["a", "b"]
    assert asyncio.run(reg.get("multiply").run({"a": 6, "b": 7})) == 42
    with pytest.raises(ToolArgumentsError, match="'b'"):
        asyncio.run(reg.get("multiply").run({"a": 6}))
    with pytest.raises(ModelRetry, match="cannot: no"):
        asyncio.run(reg.get("fail").run({"reason": "no"}))


def test_openapi_import_writes_yaml_that_loads_and_calls(tmp_path: Path, server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    spec = openapi_registry_spec(doc, base_url=server.url)
    assert [t.name for t in spec.tools] == ["get_order", "create_ticket"]
    order = spec.tools[0]
    assert isinstance(order.parameters, dict)
    assert order.parameters["required"] == ["order_id"]
    assert set(order.parameters["properties"]) == {"order_id", "expand"}
    assert order.policy.idempotent and not spec.tools[1].policy.idempotent

    data = yaml.safe_load(spec.to_yaml())
    data["tools"][0]["http"]["auth"] = {"type": "bearer", "token": "${TOKEN}"}
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    reg = load_registry(path, env={"TOKEN": TOKEN})

    async def go() -> tuple[Any, Any]:
        async with reg:
            o = await reg.get("get_order").run({"order_id": "A-7", "expand": True})
            t = await reg.get("create_ticket").run({"subject": "help", "notify": True})
            return o, t

    o, t = asyncio.run(go())
    assert o["data"]["id"] == "A-7" and o["data"]["expand"] is True
    assert t == {"created": {"subject": "help", "priority": 3}, "notify": True}
    with pytest.raises(ToolArgumentsError, match="'subject'"):
        asyncio.run(reg.get("create_ticket").run({"priority": 1}))
    direct = registry_from_openapi(doc, base_url=server.url, env={})
    assert direct.names == ["get_order", "create_ticket"]


def test_cli_list_validate_call(reg_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["list", "--registry", str(reg_path)])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "lookup\thttp\tLook up a word."
    as_json = runner.invoke(app, ["list", "-r", str(reg_path), "--json"])
    assert json.loads(as_json.output)[1]["function"]["name"] == "broken"
    ok = runner.invoke(app, ["validate", "-r", str(reg_path)])
    assert ok.exit_code == 0 and ok.output.startswith("ok: 2 tool(s)")
    called = runner.invoke(app, ["call", "lookup", "--args", '{"word": "hi"}', "-r", str(reg_path)])
    assert called.exit_code == 0, called.output
    assert json.loads(called.output)["json"] == {"word": "hi"}
    failed = runner.invoke(app, ["call", "broken", "-r", str(reg_path)])
    assert failed.exit_code == 1
    assert "tool error" in failed.output and "HTTP 500" in failed.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntools:\n  - name: x\n    pyton: m:f\n")
    result = runner.invoke(app, ["validate", "-r", str(bad)])
    # The main CLI maps ConfigError to exit code 2 and prints it; here it surfaces as raised.
    assert isinstance(result.exception, ConfigError)
    assert result.exception.line == 4


def test_agent_sees_http_failures_as_tool_results(reg_path: Path) -> None:
    from glm_agent import Agent, AssistantMessage, FunctionModel, ToolCall, ToolMessage
    from glm_agent.models.base import run_sync

    reg = load_registry(reg_path, env={})
    turns = iter(
        [
            AssistantMessage(
                tool_calls=(
                    ToolCall(name="lookup", arguments='{"word": "tea", "lang": "zh"}'),
                    ToolCall(name="broken", arguments="{}"),
                )
            ),
            "done",
        ]
    )
    agent = Agent(FunctionModel(lambda messages, info: next(turns)), tools=reg)
    try:
        result = agent.run("look up tea")
    finally:
        # The pool belongs to the loop the agent ran the tools in.
        run_sync(reg.aclose())
    statuses = {r.call.name: r.status for r in result.tool_calls}
    assert statuses == {"lookup": "ok", "broken": "error"}
    told = {m.tool_call_id: m.content for m in result.messages if isinstance(m, ToolMessage)}
    by_name = {r.call.name: told[r.call.id] for r in result.tool_calls}
    assert json.loads(by_name["lookup"])["json"] == {"word": "tea", "lang": "zh"}
    assert "HTTP 500: nope: 500" in by_name["broken"]


def test_openapi_refs_path_parameters_and_unsupported_bodies() -> None:
    from glm_agent.exceptions import ToolDefinitionError

    doc = {
        "openapi": "3.1.0",
        "servers": [{"url": "https://api.example.com/v2"}],
        "components": {
            "parameters": {
                "Tenant": {"name": "tenant", "in": "path", "schema": {"type": "string"}}
            },
            "schemas": {"Note": {"type": "object", "properties": {"text": {"type": "string"}}}},
        },
        "paths": {
            "/t/{tenant}/notes": {
                "parameters": [{"$ref": "#/components/parameters/Tenant"}],
                "post": {
                    "operationId": "notes.create",
                    "summary": "Add a note.",
                    "parameters": [{"name": "X-Trace", "in": "header"}],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}
                        }
                    },
                },
                "put": {"requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}}},
            }
        },
    }
    spec = openapi_registry_spec(doc)
    assert [t.name for t in spec.tools] == ["notes_create"]  # the text/plain PUT is left out
    note = spec.tools[0]
    assert note.http is not None
    assert note.http.url == "https://api.example.com/v2/t/{tenant}/notes"
    assert note.http.body == {"text": "text"}
    assert note.parameters == {
        "type": "object",
        "properties": {"tenant": {"type": "string"}, "text": {"type": "string"}},
        "required": ["tenant"],
    }
    assert spec.http.allowed_hosts == ["api.example.com"]
    with pytest.raises(ToolDefinitionError, match="only application/json request bodies"):
        openapi_registry_spec(doc, strict=True)
    with pytest.raises(ToolDefinitionError, match="not an OpenAPI 3 document"):
        openapi_registry_spec({"swagger": "2.0"})
