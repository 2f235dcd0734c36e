"""Package hygiene: light imports, sorted public API, the CLI."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "torch",
    "transformers",
    "faiss",
    "xformers",
    "sentence_transformers",
    "fastapi",
    "redis",
    "psycopg",
    "langchain_core",
    "tiktoken",
    "jinja2",
]
PUBLIC = [
    "glm_agent",
    "glm_agent.tools",
    "glm_agent.models",
    "glm_agent.glm",
    "glm_agent.retrieval",
    "glm_agent.memory",
    "glm_agent.runtime",
    "glm_agent.serving",
    "glm_agent.serving.bot",
    "glm_agent.serving.web",
    "glm_agent.tracing",
    "glm_agent.evals",
]


def test_import_works_without_heavy_dependencies_and_imports_none() -> None:
    # Make the heavy packages uninstallable for this interpreter, as on a bare `pip install`.
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        HEAVY = {HEAVY!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HEAVY:
                    raise ImportError(f"{{name}} is not installed")
        sys.meta_path.insert(0, Block())
        import glm_agent
        from glm_agent import Agent, FunctionModel, tool
        for mod in {PUBLIC!r}:
            importlib.import_module(mod)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
        assert not loaded, loaded
        @tool
        def ping() -> str:
            "Ping."
            return "pong"
        r = Agent(FunctionModel(lambda m, i: "ok"), tools=[ping]).run("x")
        assert r.output == "ok"
        print("clean")
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def _isort_key(name: str) -> tuple[int, list[object]]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then the rest; natural sort within each."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    parts = re.split(r"(\d+)", name)
    return kind, [int(p) if p.isdigit() else p for p in parts]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_all_is_sorted_and_resolves(name: str) -> None:
    mod = importlib.import_module(name)
    exported = list(mod.__all__)
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert hasattr(mod, attr), f"{name}.{attr} is in __all__ but missing"


def test_cli_help_version_and_run() -> None:
    from glm_agent import __version__
    from glm_agent.cli import _mount_groups, app

    _mount_groups()
    runner = CliRunner()
    assert runner.invoke(app, ["--help"]).exit_code == 0
    for command in ["version", "run"]:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["version"]).output.strip() == __version__


def test_cli_script_runs_an_agent_with_a_tool(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text(
        textwrap.dedent('''
        def shout(text: str) -> str:
            """Shout.

            Args:
                text: What to shout.
            """
            return text.upper() + "!"
    ''')
    )
    exe = Path(sys.executable).with_name("glm-agent")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [str(exe), "run", "hello", "--tool", "mytools:shout", "--no-stream"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert '"shout": "ABCDEFGHIJ!"' in out.stdout or "!" in out.stdout
    bad = subprocess.run(
        [str(exe), "run", "hello", "--tool", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and "package.module:function" in bad.stderr


def test_every_cli_command_has_help() -> None:
    import typer

    from glm_agent.cli import _mount_groups, app

    _mount_groups()
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:  # click's Command / Group, as typer ships it
        paths.append(path)
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(root, [])
    assert {"run", "chat", "serve", "version"} <= {p[0] for p in paths if p}
    assert {"kb", "tools", "sessions", "runtime", "keys", "support"} <= {p[0] for p in paths if p}
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output and "--help" in result.output
