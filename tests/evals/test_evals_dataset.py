"""Reading datasets: YAML and JSONL, `cases_from`, and errors that name file, line and key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from glm_agent.evals import Turn, load_dataset
from glm_agent.exceptions import ConfigError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_yaml_dataset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yaml",
        """\
        name: shop
        agent: agent.yaml
        policy: [{forbid_tools: [refund]}]
        cases:
          - id: a
            tags: [faq]
            turns: [hello, {text: "where is A-1?", expect: {tools: [{name: lookup}]}}]
          - id: b
            user: {scenario: wants a refund, max_turns: 3}
            expect: {handoff: true}
        """,
    )
    spec = load_dataset(path)
    assert spec.name == "shop" and spec.base_dir == tmp_path and spec.target == "agent"
    a, b = spec.cases
    assert a.fixed_turns() == [
        Turn(text="hello"),
        Turn(text="where is A-1?", expect={"tools": [{"name": "lookup"}]}),
    ]
    assert b.user is not None and b.user.max_turns == 3 and b.expect.handoff is True
    assert spec.policy[0].name == "forbid_tools"


def test_jsonl_dataset_and_cases_from(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "turns": ["hi"]},
        {"id": "b", "turns": ["yo"], "expect": {"handoff": False}},
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    spec = load_dataset(path)
    assert spec.name == "cases" and [c.id for c in spec.cases] == ["a", "b"]

    write(
        tmp_path,
        "more_cases.py",
        "def make(folder):\n    return [{'id': 'gen-1', 'turns': ['x']}]\n",
    )
    path = write(
        tmp_path,
        "gen.yaml",
        "name: gen\ncases_from: more_cases:make\ncases: [{id: own, turns: [y]}]\n",
    )
    assert [c.id for c in load_dataset(path).cases] == ["own", "gen-1"]


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        (
            "name: x\ncases:\n  - id: a\n    turns: [hi]\n    expect: {handof: true}\n",
            5,
            "cases.0.expect.handof",
            "Extra inputs",
        ),
        (
            "name: x\ncases:\n  - id: a\n    turns: [hi]\n    user: {scenario: s}\n",
            3,
            "cases.0",
            "either turns",
        ),
        (
            "name: x\npolicy:\n  - {forbid_tools: [a], max_tool_calls: 3}\n"
            "cases: [{id: a, turns: [hi]}]\n",
            3,
            "policy.0",
            "exactly one rule",
        ),
        (
            "name: x\ntarget: widget\ncases: [{id: a, turns: [hi]}]\n",
            2,
            "target",
            "'agent' or 'bot'",
        ),
        ("name: x\ncases:\n  - id: a b\n    turns: [hi]\n", 3, "cases.0.id", "pattern"),
    ],
)
def test_errors_name_the_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_dataset(path)
    assert (info.value.path, info.value.line, info.value.key) == (str(path), line, key)


def test_other_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="two cases have the id 'a'"):
        load_dataset(
            write(
                tmp_path, "dup.yaml", "name: x\ncases: [{id: a, turns: [x]}, {id: a, turns: [y]}]\n"
            )
        )
    with pytest.raises(ConfigError, match="no cases"):
        load_dataset(write(tmp_path, "empty.yaml", "name: x\n"))
    with pytest.raises(ConfigError, match=r"is a \.yaml, \.yml or \.jsonl file"):
        load_dataset(write(tmp_path, "d.txt", "x"))
    with pytest.raises(ConfigError, match="no dataset file"):
        load_dataset(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "turns": ["x"]}\n{"id": "b"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="either turns") as info:
        load_dataset(bad)
    assert info.value.line == 2
    with pytest.raises(ConfigError, match="cannot load cases_from 'nowhere:make'"):
        load_dataset(write(tmp_path, "gen.yaml", "name: x\ncases_from: nowhere:make\n"))
