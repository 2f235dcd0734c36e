"""docs/evals.md and the README's evaluation section: the dataset example is valid, the Python
compiles, the command-line options exist, and every documented check and rule is a real one."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
import yaml

from glm_agent.cli import _mount_groups, app
from glm_agent.evals import DatasetSpec, Expectation, PolicyRule

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "evals.md"


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_dataset_example_is_valid() -> None:
    [example] = blocks(DOC.read_text(encoding="utf-8"), "yaml")
    spec = DatasetSpec.model_validate(yaml.safe_load(example))
    assert spec.target == "bot" and len(spec.cases) == 3


def test_python_blocks_compile() -> None:
    for source in blocks(DOC.read_text(encoding="utf-8"), "python"):
        compile(source, str(DOC), "exec")


def test_documented_options_exist() -> None:
    _mount_groups()
    group = typer.main.get_command(app)
    options: set[str] = set()
    for name in ("eval", "eval-import", "support"):
        command = group.commands[name]  # type: ignore[attr-defined]
        for c in getattr(command, "commands", {}).values() or [command]:
            for p in c.params:
                options.update(o for o in p.opts if o.startswith("-"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bash = "\n".join(blocks(DOC.read_text(encoding="utf-8"), "bash") + blocks(readme, "bash"))
    used = {
        o
        for line in bash.splitlines()
        if "glm-agent eval" in line or "support export" in line
        for o in re.findall(r"\s(--?[a-z][a-z-]*)", line)
    }
    assert {"--env", "--model", "--compare", "--judge", "--user-model", "--agent", "-o"} <= used
    assert used <= options, used - options


def test_documented_checks_and_rules_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    expectations = text.split("### Expectations")[1].split("### Policy rules")[0]
    keys = set(re.findall(r"^\| `([a-z_]+)", expectations, re.M))
    assert keys <= set(Expectation.model_fields) and len(keys) >= 10
    rules = text.split("### Policy rules")[1].split("###")[0]
    names = set(re.findall(r"^\| `([a-z_]+)", rules, re.M))
    assert names == set(PolicyRule.model_fields)
