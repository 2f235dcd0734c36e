"""`glm-agent support ...` (the Typer sub-app, run in-process)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from glm_agent.cli._support import app
from glm_agent.serving.bot import verify_password


def test_support_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["hash-password"], input="pw-1\npw-1\n")
    assert r.exit_code == 0, r.output
    assert verify_password("pw-1", r.output.strip().splitlines()[-1])
    (tmp_path / "agent.yaml").write_text("name: x\nmodel: test\nmemory: none\n", encoding="utf-8")
    (tmp_path / "support.yaml").write_text("tenant: t\n", encoding="utf-8")
    r = runner.invoke(app, ["summary", str(tmp_path / "agent.yaml")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["conversations"] == 0
    r = runner.invoke(app, ["export", str(tmp_path / "agent.yaml"), "--format", "csv"])
    assert r.exit_code == 0 and r.output.startswith("conversation_id,")
    r = runner.invoke(app, ["export", str(tmp_path / "agent.yaml"), "--format", "xml"])
    assert r.exit_code == 2 and "formats: jsonl, csv" in r.output
