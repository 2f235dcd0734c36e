"""docs/mcp.md: its code blocks parse, its registry loads as documented (nothing starts)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from glm_agent.tools import MCPServer, load_registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_python_and_json_blocks_parse() -> None:
    for source in blocks("python"):
        compile(source, str(DOC), "exec")
    for source in blocks("json"):
        assert "mcpServers" in json.loads(source)


def test_the_documented_registry_loads(tmp_path: Path) -> None:
    (registry_yaml,) = blocks("yaml")
    path = tmp_path / "tools.yaml"
    path.write_text(registry_yaml)
    with pytest.raises(Exception, match="SEARCH_TOKEN"):
        load_registry(path, env={})
    registry = load_registry(path, env={"SEARCH_TOKEN": "t"})
    files, search = registry.tool_sources
    assert isinstance(files, MCPServer) and isinstance(search, MCPServer)
    assert files.spec.kind == "stdio" and files.spec.cwd == str(tmp_path)
    assert search.spec.kind == "streamable-http"
    assert search.spec.headers == {"Authorization": "Bearer t"}
    assert search.spec.policies["reindex"].requires_approval
    assert not files.running and registry.names == []
    dev = load_registry(path, environment="dev", env={"SEARCH_TOKEN": "t"})
    assert dev.tool_sources[1].spec.url == "http://127.0.0.1:9000/mcp"  # type: ignore[attr-defined]
