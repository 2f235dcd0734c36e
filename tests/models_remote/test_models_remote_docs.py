"""docs/scale-out.md: its model strings resolve as documented and its code blocks parse."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from glm_agent.models.openai_compat import OpenAICompatibleModel
from glm_agent.models.resolve import resolve_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
REMOTE = re.compile(r"[`\"]((?:vllm|sglang|openai|zhipu):[^`\"\s]+)[`\"]")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_model_strings_resolve_as_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    specs = set(REMOTE.findall(text))
    assert len(specs) >= 8
    for spec in specs:
        model = resolve_model(spec)
        assert isinstance(model, OpenAICompatibleModel), spec
    # the table's claims about modes
    for row in re.findall(r"^\| `((?:vllm|sglang):[^`]+)` \| ([^|]+)\|$", text, re.M):
        spec, claim = row
        model = resolve_model(spec)
        assert isinstance(model, OpenAICompatibleModel)
        if "completions mode" in claim:
            assert model.mode == "completions", spec
        if "chat mode" in claim:
            assert model.mode == "chat", spec


def test_code_blocks_parse() -> None:
    for source in blocks("python"):
        compile(source, str(DOC), "exec")
    for source in blocks("yaml"):
        data = yaml.safe_load(source)
        names = [data["model"]["name"]] + [env["model"] for env in data["environments"].values()]
        for name in names:
            assert isinstance(resolve_model(name), OpenAICompatibleModel)
    bash = "\n".join(blocks("bash"))
    # every tool parser the docs name is paired with a reasoning parser
    assert bash.count("--tool-call-parser") == bash.count("--reasoning-parser") >= 4
