"""docs/observability.md: its YAML is a valid `tracing:` section, its Python compiles, and every
attribute it documents is one glm-agent sets."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from glm_agent.tracing import TracingConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "observability.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_yaml_blocks_are_valid_tracing_sections() -> None:
    sections = [yaml.safe_load(b)["tracing"] for b in blocks("yaml")]
    assert len(sections) >= 4
    for section in sections:
        TracingConfig.model_validate(section)


def test_python_blocks_compile() -> None:
    for source in blocks("python"):
        compile(source, str(DOC), "exec")


def test_documented_attributes_are_set_by_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## The span tree")[1].split("### Contents")[0]
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "glm_agent").rglob("*.py"))
    names = set(re.findall(r"`((?:gen_ai|glm_agent|http|url|error)\.[a-z_.]+)`", table))
    # The table shortens siblings: `glm_agent.retrieval.k` / `mode` / `filters`.
    for row in table.splitlines():
        for head, tail in re.findall(r"`((?:gen_ai|glm_agent)\.[a-z_.]+)`((?: / `[a-z_]+`)+)", row):
            prefix = head.rsplit(".", 1)[0]
            names |= {f"{prefix}.{t}" for t in re.findall(r"`([a-z_]+)`", tail)}
    assert len(names) >= 40
    # `tracing.mark("handoff", trigger=...)` sets glm_agent.handoff.trigger.
    marks = re.findall(r'tracing\.mark\("([a-z_]+)", (.*)\)$', code, re.M)
    marked = {f"glm_agent.{name}.{k}" for name, args in marks for k in re.findall(r"(\w+)=", args)}
    missing = sorted(n for n in names if f'"{n}"' not in code and n not in marked)
    assert not missing, missing
