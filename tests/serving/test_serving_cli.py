"""`glm-agent run agent.yaml`, `chat` (CliRunner input), `keys create`, exit codes."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glm_agent.cli import _mount_groups, app, main
from glm_agent.serving import ApiKey, hash_key

EXAMPLE = Path(__file__).parents[2] / "examples" / "support-agent" / "agent.yaml"


@pytest.fixture
def agent_file(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    # The example's scripted model and tools, with its sessions kept in tmp_path.
    (tmp_path / "agent.yaml").write_text(text, encoding="utf-8")
    for name in ("support_model.py", "shop_tools.py"):
        (tmp_path / name).write_text((EXAMPLE.parent / name).read_text(), encoding="utf-8")
    return tmp_path / "agent.yaml"


def test_run_agent_yaml_with_session(agent_file: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(agent_file), "Where is my order A-1042?", "-s", "c1"])
    assert r.exit_code == 0, r.output
    assert "Order A-1042 is shipped, expected 2026-11-25." in r.stdout
    r = runner.invoke(app, ["run", str(agent_file), "hello", "--session", "c1", "--no-stream"])
    assert "(message 2 of this conversation)" in r.stdout
    assert (agent_file.parent / ".glm-agent" / "sessions.db").is_file()


def test_run_keeps_the_question_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["run", "hello there", "--model", "test", "--no-stream"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip()


def test_chat_streams_answers_and_tool_calls(agent_file: Path) -> None:
    r = CliRunner().invoke(
        app, ["chat", str(agent_file)], input="hello\nWhere is A-1043?\n/new\nhi\n/exit\n"
    )
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "(message 1 of this conversation)" in out
    assert '→ order_status({"order_id": "A-1043"})' in out
    assert "← order_status [ok]" in out
    assert "Order A-1043 is processing." in out
    # After /new the conversation starts over.
    assert out.count("(message 1 of this conversation)") == 2


def test_keys_create_prints_key_once_and_config_line() -> None:
    _mount_groups()
    r = CliRunner().invoke(
        app, ["keys", "create", "--tenant", "acme", "--scopes", "chat,runs", "--rpm", "30"]
    )
    assert r.exit_code == 0, r.output
    raw = re.search(r"gak_[A-Za-z0-9_\-]+", r.stdout)
    assert raw is not None
    line = r.stdout.strip().splitlines()[-1].strip().removeprefix("- ")
    key = ApiKey.model_validate_json(line)
    assert key.hash == hash_key(raw[0]) and key.tenant == "acme"
    assert key.scopes == ["chat", "runs"] and key.rate_limit is not None
    assert raw[0] not in line


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["glm-agent", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return int(exit_.value.code or 0)


def test_main_maps_errors_to_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("name: x\nlimits:\n  max_steps: -1\n"), encoding="utf-8")
    assert _main(monkeypatch, "run", str(bad), "hi") == 2
    err = capsys.readouterr().err
    assert f"{bad}:3 (limits.max_steps)" in err
    assert _main(monkeypatch, "keys", "create", "--tenant", "t", "--scopes", "bogus") == 2
    assert "scopes: chat, runs, sessions, knowledge, identify, admin" in capsys.readouterr().err
    assert _main(monkeypatch, "serve", "--help") == 0
    assert "--workers" in capsys.readouterr().out
