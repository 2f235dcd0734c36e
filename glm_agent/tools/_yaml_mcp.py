"""The `mcp:` servers of YAML tool registries: `${ENV}` secrets filled in, paths made relative
to the file, names unique across included files. Nothing is started here: servers start when a
run first needs their tools."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from glm_agent._yaml_source import KeyPath, YamlSource
from glm_agent.tools._mcp_client import MCPServer
from glm_agent.tools._mcp_spec import MCPServerSpec
from glm_agent.tools._yaml_schema import RegistryFile

__all__ = ["mcp_servers", "paths_from", "resolve_spec"]


def resolve_spec(
    source: YamlSource, where: KeyPath, raw: object, env: Mapping[str, str]
) -> MCPServerSpec:
    """One `mcp:` entry with `${VAR}`s replaced and relative paths taken from the file's folder:
    `cwd` (default: that folder, so relative `args` are relative to the file too) and a
    `command` given as a relative path (`./node_modules/.bin/server`).

    Raises:
        ConfigError: A variable is not set, or the entry is invalid once filled in (names the
            file, line and key).
    """
    doc: dict[str, object] = {}
    node = doc
    for part in where[:-1]:
        node[str(part)] = {}
        node = node[str(part)]  # type: ignore[assignment]
    node[str(where[-1])] = copy.deepcopy(raw)
    filled = YamlSource(source.path, doc, source.lines).substitute_env(env).data
    for part in where:
        filled = filled[str(part)]
    try:
        spec = MCPServerSpec.model_validate(filled)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        key = (*where, *(p for p in first["loc"] if isinstance(p, str)))
        raise source.error(first["msg"].removeprefix("Value error, "), key) from None
    if spec.url is not None and not spec.url.startswith(("http://", "https://")):
        raise source.error(f"url must start with http:// or https://, got {spec.url!r}", where)
    return paths_from(spec, Path(source.path).resolve().parent)


def paths_from(spec: MCPServerSpec, base: Path) -> MCPServerSpec:
    """A stdio server's `cwd` (default: `base`) and relative `command` path taken from `base`."""
    if spec.kind != "stdio":
        return spec
    update: dict[str, str] = {"cwd": str(base / spec.cwd if spec.cwd else base)}
    command = spec.command or ""
    if "/" in command and not Path(command).is_absolute():
        update["command"] = str(base / command)
    return spec.model_copy(update=update)


def mcp_servers(
    files: list[tuple[YamlSource, RegistryFile, bool]], env: Mapping[str, str]
) -> list[MCPServer]:
    """The MCP servers of a registry and the files it includes (root last in `files`).

    Raises:
        ConfigError: A server name is used twice, or an entry is invalid (file, line, key).
    """
    first: dict[str, tuple[YamlSource, KeyPath]] = {}
    servers: list[MCPServer] = []
    for source, spec, _ in files:
        for name in spec.mcp:
            where: KeyPath = ("mcp", name)
            if name in first:
                other, other_where = first[name]
                raise source.error(
                    f"duplicate MCP server name {name!r}, first defined at "
                    f"{other.path}:{other.line(other_where)}",
                    where,
                )
            first[name] = (source, where)
            resolved = resolve_spec(source, where, source.data["mcp"][name], env)
            servers.append(MCPServer.from_spec(name, resolved))
    return servers
