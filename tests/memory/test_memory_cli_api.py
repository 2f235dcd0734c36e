"""The `sessions` CLI, the sync facade and the package's public API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import glm_agent.memory as memory
from glm_agent.cli._memory import app
from glm_agent.memory import SessionMetadata, SyncSessionStore, open_store
from glm_agent.messages import AssistantMessage, UserMessage


def _fill(url: str) -> None:
    async def main() -> None:
        async with open_store(url) as store:
            meta = SessionMetadata(customer_id="c1", channel="web")
            await store.append("acme", "s1", [UserMessage(content="hello 你好")], metadata=meta)
            await store.append("acme", "s1", [AssistantMessage(content="hi there")])
            await store.append("acme", "s2", [UserMessage(content="x")], metadata=meta)
            await store.append("acme", "s3", [UserMessage(content="y")])

    asyncio.run(main())


def test_sessions_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    _fill(url)
    runner = CliRunner()
    listed = runner.invoke(app, ["list", "--store", url, "--tenant", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["session_id"] for r in rows] == ["s3", "s2", "s1"]
    table = runner.invoke(app, ["list", "--store", url, "--tenant", "acme", "--customer", "c1"])
    assert table.exit_code == 0 and "s1" in table.output and "s3" not in table.output

    shown = runner.invoke(app, ["show", "s1", "--store", url, "--tenant", "acme"])
    assert shown.exit_code == 0, shown.output
    assert "[user] hello 你好" in shown.output and "[assistant] hi there" in shown.output
    as_json = runner.invoke(app, ["show", "s1", "--store", url, "--tenant", "acme", "--json"])
    assert json.loads(as_json.output)["version"] == 2

    bad = runner.invoke(app, ["list", "--store", url, "--status", "open"])
    assert "statuses: bot, handed_off, closed" in str(bad.exception)
    missing = runner.invoke(app, ["show", "nope", "--store", url, "--tenant", "acme"])
    assert missing.exit_code == 1

    gone = runner.invoke(app, ["delete", "--store", url, "--tenant", "acme", "--customer", "c1"])
    assert gone.exit_code == 0 and "deleted 2 session(s)" in gone.output
    one = runner.invoke(app, ["delete", "s3", "--store", url, "--tenant", "acme"])
    assert one.exit_code == 0
    again = runner.invoke(app, ["delete", "s3", "--store", url, "--tenant", "acme"])
    assert again.exit_code == 1
    neither = runner.invoke(app, ["delete", "--store", url])
    assert neither.exit_code == 2


def test_sync_facade_works_inside_a_running_loop(tmp_path: Path) -> None:
    with SyncSessionStore(f"sqlite:///{tmp_path}/sync.db") as store:
        assert store.append("acme", "s", [UserMessage(content="a")]) == 1

        async def inside_loop() -> int:
            # a sync tool called from async code: the facade runs on its own loop
            return store.append("acme", "s", [UserMessage(content="b")], expected_version=1)

        assert asyncio.run(inside_loop()) == 2
        session = store.load("acme", "s")
        assert session is not None and [m.content for m in session.messages] == ["a", "b"]
        assert [i.session_id for i in store.list_sessions("acme")] == ["s"]
        assert store.delete("acme", "s") is True


def test_public_api_is_sorted_and_importable() -> None:
    assert memory.__all__ == sorted(memory.__all__)
    for name in memory.__all__:
        assert getattr(memory, name) is not None


def test_import_is_light_and_layered() -> None:
    code = (
        "import sys, glm_agent.memory\n"
        "heavy = {'redis', 'psycopg', 'psycopg_pool', 'torch', 'faiss', 'transformers'}\n"
        "ours = {'glm_agent.tools', 'glm_agent.retrieval', 'glm_agent.planner', 'glm_agent.agent',"
        " 'glm_agent.models'}\n"
        "print(sorted(m for m in sys.modules if m in heavy or m in ours))\n"
    )
    # Import the subpackage without running glm_agent/__init__ (which pulls in the agent).
    code = (
        "import sys, types; sys.modules['glm_agent'] = types.ModuleType('glm_agent'); "
        + (
            "sys.modules['glm_agent'].__path__ = ["
            + repr(str(Path(memory.__file__).parents[1]))
            + "]\n"
        )
        + code
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sqlite_urls_with_absolute_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glm_agent.memory import open_store

    monkeypatch.chdir(tmp_path / "..")
    absolute = tmp_path / "abs.db"
    assert open_store(f"sqlite:///{absolute}").path == str(absolute)  # sqlite:////...
    assert open_store("sqlite:///rel/x.db?ttl=5").path == "rel/x.db"
