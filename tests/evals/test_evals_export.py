"""Real traffic as regression tests: conversations held with the Bamboo Lane bot, exported as the
console exports them, turned into a dataset by `glm-agent eval-import`, and run again."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from glm_agent.cli import _mount_groups, app
from glm_agent.evals import dataset_from_export, load_dataset, run_eval
from glm_agent.exceptions import ConfigError


def hold_conversations(bamboo: Path, tmp_path: Path) -> Path:
    """Three conversations with the example's bot (its own database in tmp_path), exported."""
    import cs_store_env  # the example's environment: a fresh store

    from glm_agent.evals._models import support_config
    from glm_agent.serving.bot import SupportBot
    from glm_agent.serving.bot._records import export

    env = cs_store_env.StoreEnvironment(bamboo / "evals")
    env.setup()
    try:
        from glm_agent.agent_config import load_agent_config

        config = load_agent_config(bamboo / "agent.yaml")
        config.memory = "none"
        agent = config.build()
        support = support_config(bamboo / "agent.yaml").model_copy(
            update={"database": str(tmp_path / "live.db")}
        )
        bot = SupportBot(agent, support, base_dir=bamboo)
        bot.prepare()

        async def talk() -> None:
            happy, _, _ = await bot.create_conversation("web", "c-1")
            await bot.handle(happy.id, "运费怎么算？")
            await bot.handle(happy.id, "P-1003 还有货吗？")
            bot.db.update(bot.tenant, happy.id, tags={**bot.conversation(happy.id).tags, "csat": 5})
            handed, _, _ = await bot.create_conversation("web", "c-2")
            await bot.handle(handed.id, "Where is order SO10010?")
            await bot.handle(handed.id, "I want to talk to a human")
            await bot.handle(handed.id, "hello? anyone?")  # to the human, not the bot
            unhappy, _, _ = await bot.create_conversation("web", "c-3")
            await bot.handle(unhappy.id, "Do you charge a delivery fee?")
            bot.db.update(bot.tenant, unhappy.id, tags={"csat": 1})

        asyncio.run(talk())
        body, _ = export(bot, "jsonl")
        bot.close()
    finally:
        env.teardown()
    path = tmp_path / "export.jsonl"
    path.write_text(body, encoding="utf-8")
    return path


def test_an_export_becomes_a_dataset_that_passes_again(
    bamboo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(bamboo / "evals"))
    exported = hold_conversations(bamboo, tmp_path)
    dataset = bamboo / "evals" / "from-traffic.yaml"
    _mount_groups()
    result = CliRunner().invoke(
        app, ["eval-import", str(exported), "-o", str(dataset), "--agent", "../agent.yaml"]
    )
    assert result.exit_code == 0, result.output
    assert "3 cases" in result.output
    data = yaml.safe_load(dataset.read_text(encoding="utf-8"))
    assert data["target"] == "bot" and data["agent"] == "../agent.yaml"
    happy, handed, unhappy = data["cases"]
    assert happy["turns"] == [
        {"text": "运费怎么算？", "expect": {"curated": True}},
        {"text": "P-1003 还有货吗？", "expect": {"curated": False, "contains": ["P-1003"]}},
    ]
    assert happy["expect"]["handoff"] is False and "rated 5/5" in happy["expect"]["rubric"]
    # Cut at the handoff: what was said to the human is not replayed to the bot.
    assert [t if isinstance(t, str) else t["text"] for t in handed["turns"]] == [
        "Where is order SO10010?",
        "I want to talk to a human",
    ]
    assert handed["turns"][1]["expect"] == {"handoff": True}
    assert handed["expect"]["handoff"] is True
    assert "needs-review" in unhappy["tags"] and unhappy["turns"] == [
        "Do you charge a delivery fee?"
    ]

    before = os.environ.get("CS_STORE_DB")
    report = asyncio.run(run_eval(load_dataset(dataset)))
    assert os.environ.get("CS_STORE_DB") == before
    assert [c.passed for c in report.cases] == [True, True, True], [c.checks for c in report.cases]
    assert report.rubrics_skipped == 1


def test_bad_export_lines_are_named(tmp_path: Path) -> None:
    from glm_agent.evals import write_dataset

    export = tmp_path / "export.jsonl"
    export.write_text('{"conversation_id": "c", "messages": []}\n{"oops": 1}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not an exported conversation") as info:
        write_dataset(export, tmp_path / "d.yaml")
    assert info.value.line == 2
    assert dataset_from_export([{"conversation_id": "c", "messages": []}], name="x")["cases"] == []
    assert json.loads(json.dumps(dataset_from_export([], name="x")))["target"] == "bot"
