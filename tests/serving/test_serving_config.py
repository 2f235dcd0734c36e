"""agent.yaml: schema, ${ENV} substitution, environments, errors at file:line (key)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from glm_agent import Agent
from glm_agent.agent_config import load_agent, load_agent_config
from glm_agent.exceptions import ConfigError
from glm_agent.models import FunctionModel, TestModel

TOOLS = '''
def lookup(order_id: str) -> str:
    """Find an order.

    Args:
        order_id: The order number.
    """
    return "order " + order_id + " shipped"


def turn(messages, info):
    from glm_agent.messages import AssistantMessage, ToolCall, ToolMessage
    if isinstance(messages[-1], ToolMessage):
        return "answer: " + messages[-1].content
    return AssistantMessage(tool_calls=(ToolCall.from_args("lookup", {"order_id": "A-1"}),))
'''


def write(folder: Path, text: str, name: str = "agent.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A module name unique to this test run: yaml folders go on sys.path.
    (tmp_path / "cfg_tools_mod.py").write_text(TOOLS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_full_config_builds_a_working_agent(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_NAME", "shopbot")
    (project / "prompt.txt").write_text("Be brief.", encoding="utf-8")
    registry = "version: 1\ntools:\n  - name: find_order\n    python: cfg_tools_mod:lookup\n"
    (project / "registry.yaml").write_text(registry, encoding="utf-8")
    path = write(
        project,
        """
        name: ${BOT_NAME}
        model:
          function: cfg_tools_mod:turn
          settings: {temperature: 0.2}
        system_prompt_file: prompt.txt
        tools: [cfg_tools_mod:lookup, registry.yaml]
        limits: {max_steps: 3, total_tokens_limit: 5000, model_timeout: 9}
        """,
    )
    agent = Agent.from_yaml(str(path))
    assert agent.name == "shopbot"
    assert isinstance(agent.model, FunctionModel)
    assert agent.tools.names == ["lookup", "find_order"]
    assert agent.system_prompt == "Be brief."
    result = agent.run("where?", session_id="s1")
    assert result.output == "answer: order A-1 shipped"
    # The default memory is SQLite in .glm-agent beside the file, and it kept the session.
    assert (project / ".glm-agent" / "sessions.db").is_file()
    again = load_agent(path)
    assert again.memory is not None
    session = again.run("and now?", session_id="s1")
    assert [m.role for m in session.messages].count("user") == 2


def test_env_default_environment_overlay_and_memory_off(project: Path) -> None:
    path = write(
        project,
        """
        model: ${MODEL_FOR_TEST_UNSET:-test}
        memory: none
        environments:
          scripted: {model: {function: cfg_tools_mod:turn}, limits: {max_steps: 2}}
        """,
    )
    agent = load_agent(path)
    assert isinstance(agent.model, TestModel) and agent.memory is None
    cfg = load_agent_config(path, environment="scripted")
    assert cfg.limits.max_steps == 2
    assert isinstance(cfg.build().model, FunctionModel)
    with pytest.raises(ConfigError, match="unknown environment 'prod'; environments: scripted"):
        load_agent_config(path, environment="prod")


def test_missing_variable_names_it_and_the_line(project: Path) -> None:
    path = write(project, "name: bot\nmemory: ${SESSIONS_URL_NOT_SET}\n")
    with pytest.raises(ConfigError) as err:
        load_agent(path)
    assert err.value.line == 2 and err.value.key == "memory"
    assert "SESSIONS_URL_NOT_SET" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("name: bot\nlimits:\n  max_steps: 0\n", 3, "limits.max_steps", "greater than"),
        ("name: bot\nmodle: test\n", 2, "modle", "Extra inputs"),
        ("name: bot\ntools:\n  - a.yaml\n  - nomodule_xyz:fn\n", 4, "tools.1", "cannot load"),
        ("name: bot\nmodel: nosuchprefix:abc\n", 2, "model", "unknown model prefix"),
        ("name: bot\nmodel: {settings: {temperature: -1}}\n", 2, "model.settings.temperature", ""),
        ("name: [unclosed\n", 2, None, "not valid YAML"),
    ],
)
def test_errors_point_at_file_line_and_key(
    project: Path, text: str, line: int, key: str | None, words: str
) -> None:
    (project / "a.yaml").write_text("version: 1\ntools: []\n", encoding="utf-8")
    path = write(project, text)
    with pytest.raises(ConfigError) as err:
        load_agent(path)
    assert (err.value.path, err.value.line, err.value.key) == (str(path), line, key)
    assert words in str(err.value)


def test_serving_package_is_light_and_sorted() -> None:
    import subprocess
    import sys

    import glm_agent.serving as serving

    assert serving.__all__ == sorted(serving.__all__)
    assert all(hasattr(serving, n) for n in serving.__all__)
    code = (
        "import sys, glm_agent.serving, glm_agent.agent_config; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'prometheus_client', 'starlette') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_app_from_several_yaml_files_with_a_keys_file(project: Path) -> None:
    import asyncio

    import httpx

    from glm_agent.serving import app_from_yaml, generate_key, hash_key

    raw = generate_key()
    (project / "keys.yaml").write_text(
        f"keys:\n  - {{hash: '{hash_key(raw)}', tenant: t1, scopes: [chat]}}\n", encoding="utf-8"
    )
    one = write(
        project,
        "name: one\nmodel: {function: cfg_tools_mod:turn}\ntools: [cfg_tools_mod:lookup]\n"
        "memory: none\nserver:\n  keys_file: keys.yaml\n",
        "one.yaml",
    )
    two = write(project, "name: two\nmodel: test\nmemory: none\n", "two.yaml")
    one.write_text(one.read_text() + "  models: {raw: test}\n", encoding="utf-8")
    app = app_from_yaml([one, two])

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            auth = {"Authorization": f"Bearer {raw}"}
            body = {"model": "one", "messages": [{"role": "user", "content": "where?"}]}
            return [
                await c.get("/v1/models", headers=auth),
                await c.post("/v1/chat/completions", json=body, headers=auth),
                await c.get("/v1/models"),
            ]

    models, answer, anonymous = asyncio.run(go())
    assert [m["id"] for m in models.json()["data"]] == ["one", "two", "raw"]
    assert answer.json()["choices"][0]["message"]["content"] == "answer: order A-1 shipped"
    assert anonymous.status_code == 401
    bad = write(project, "name: three\nserver: {max_body_bytes: 1}\n", "three.yaml")
    with pytest.raises(ConfigError, match=r"three\.yaml"):
        app_from_yaml([bad])
