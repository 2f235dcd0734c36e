"""Loading YAML tool registries: includes, environment overrides, errors that point at the line."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from glm_agent._yaml_source import KeyPath, YamlSource, read_yaml
from glm_agent.exceptions import ConfigError
from glm_agent.tools._http import HttpClientPool
from glm_agent.tools._mcp_spec import MCPServerSpec
from glm_agent.tools._registry import ToolRegistry
from glm_agent.tools._tool import Tool, ToolPolicy
from glm_agent.tools._yaml_build import ToolEntry, build_tool, check_environment
from glm_agent.tools._yaml_mcp import mcp_servers
from glm_agent.tools._yaml_schema import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    EnvironmentOverride,
    HttpBinding,
    HttpSettings,
    RegistryFile,
    ResponseSelector,
    ToolSpec,
)

__all__ = ["YamlToolRegistry", "load_registry", "registry_from_spec"]

ENV_VAR = "GLM_AGENT_ENV"


class YamlToolRegistry(ToolRegistry):
    """A `ToolRegistry` loaded from YAML; owns the HTTP connection pool of its HTTP tools and
    its MCP servers (started by `await registry.ready()`, which every run does first).

    Close it with `await registry.aclose()` (or `async with registry:`) when done.
    """

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        *,
        pool: HttpClientPool | None = None,
        sources: Iterable[str] = (),
        environment: str | None = None,
    ) -> None:
        super().__init__(tools)
        self.pool = pool or HttpClientPool(HttpSettings())
        """The HTTP client shared by the registry's HTTP tools."""
        self.sources = list(sources)
        """The files the tools were read from, root first."""
        self.environment = environment
        """The environment whose overrides were applied, if any."""

    async def aclose(self) -> None:
        """Stop the MCP servers and close the HTTP connection pool."""
        await super().aclose()
        await self.pool.aclose()

    async def __aenter__(self) -> YamlToolRegistry:
        await self.ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """The registry-format model that a mapping at `path` is validated against."""
    shape = tuple("*" if isinstance(p, int) else p for p in path)
    if len(shape) == 2 and shape[0] == "environments":
        return EnvironmentOverride
    if shape[:1] == ("mcp",):
        rest = shape[2:]
        if not rest:
            return MCPServerSpec
        if rest == ("policy",) or (len(rest) == 2 and rest[0] == "policies"):
            return ToolPolicy
        return None
    models: dict[tuple[str, ...], type[BaseModel]] = {
        (): RegistryFile,
        ("http",): HttpSettings,
        ("tools", "*"): ToolSpec,
        ("tools", "*", "http"): HttpBinding,
        ("tools", "*", "policy"): ToolPolicy,
        ("tools", "*", "http", "response"): ResponseSelector,
    }
    return models.get(shape)


def _auth_keys(source: YamlSource, path: KeyPath) -> list[str]:
    auth = source.data
    for p in path:
        auth = auth[p]
    kind = auth.get("type") if isinstance(auth, dict) else None
    auth_models: dict[str, type[BaseModel]] = {
        "bearer": BearerAuth,
        "basic": BasicAuth,
        "api_key": ApiKeyAuth,
    }
    model = auth_models.get(str(kind))
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _validation_error(source: YamlSource, error: ValidationError) -> ConfigError:
    """The first problem of a pydantic error, pointing at the deepest key that exists."""
    e = error.errors(include_url=False)[0]
    path: KeyPath = ()
    node: Any = source.data
    for part in e["loc"]:
        if _has(node, part):
            node, path = node[part], (*path, part)
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        parent = path[:-1]
        model = _model_at(parent)
        if model is not None:
            valid = [f.alias or n for n, f in model.model_fields.items()]
        else:
            valid = _auth_keys(source, parent) if parent[-1:] == ("auth",) else []
        msg = f"unknown key {path[-1]!r}" + (f"; valid keys: {', '.join(valid)}" if valid else "")
    elif e["type"] == "missing":
        msg = f"missing required key {e['loc'][-1]!r}"
    elif e["type"] == "union_tag_invalid" or e["type"] == "union_tag_not_found":
        msg = f"{msg} (auth type: bearer, basic or api_key)"
    if len(error.errors()) > 1 and e["type"] != "extra_forbidden":
        msg += f" (and {len(error.errors()) - 1} more problem(s))"
    return source.error(msg, path)


def _merge(
    source: YamlSource, target: dict[str, Any], over: dict[str, Any], tpath: KeyPath, opath: KeyPath
) -> None:
    """Merge `over` into `target` key by key; merged keys take the override's line."""
    for k, v in over.items():
        t, o = (*tpath, k), (*opath, k)
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(source, target[k], v, t, o)
        else:
            target[k] = copy.deepcopy(v)
        if o in source.lines:
            source.lines[t] = source.lines[o]


def _apply_environment(source: YamlSource, name: str) -> bool:
    """Apply the overrides of environment `name` to the raw document; whether it has them."""
    envs = source.data.get("environments") or {}
    if name not in envs:
        return False
    over = envs[name] or {}
    tools = source.data.get("tools") or []
    index = {t.get("name"): i for i, t in enumerate(tools) if isinstance(t, dict)}
    for tool_name, changes in (over.get("tools") or {}).items():
        opath: KeyPath = ("environments", name, "tools", tool_name)
        if tool_name not in index:
            names = ", ".join(str(n) for n in index) or "(none)"
            raise source.error(f"override of unknown tool {tool_name!r}; tools: {names}", opath)
        i = index[tool_name]
        _merge(source, tools[i], changes, ("tools", i), opath)
    if over.get("http"):
        source.data.setdefault("http", {})
        _merge(source, source.data["http"], over["http"], ("http",), ("environments", name, "http"))
    servers = source.data.get("mcp") or {}
    for server, changes in (over.get("mcp") or {}).items():
        opath = ("environments", name, "mcp", server)
        if server not in servers:
            names = ", ".join(str(n) for n in servers) or "(none)"
            raise source.error(
                f"override of unknown MCP server {server!r}; servers: {names}", opath
            )
        _merge(source, servers[server], changes or {}, ("mcp", server), opath)
    return True


def _validate(source: YamlSource, environment: str | None) -> tuple[RegistryFile, bool]:
    if not isinstance(source.data, dict):
        raise source.error("a registry file must be a mapping with 'version' and 'tools'", ())
    if "version" not in source.data:
        raise source.error("missing 'version' (the current format is version: 1)", ())
    try:
        parsed = RegistryFile.model_validate(source.data)
    except ValidationError as e:
        raise _validation_error(source, e) from None
    # Every environment is checked, not only the selected one: a typo in `prod` should fail
    # `glm-agent tools validate` on a developer's machine, not the deploy.
    for name in parsed.environments:
        trial = YamlSource(source.path, copy.deepcopy(source.data), dict(source.lines))
        _apply_environment(trial, name)
        try:
            RegistryFile.model_validate(trial.data)
        except ValidationError as e:
            raise _validation_error(trial, e) from None
    if environment is None or not _apply_environment(source, environment):
        return parsed, False
    return RegistryFile.model_validate(source.data), True


def _read_all(
    path: Path,
    environment: str | None,
    seen: list[Path],
    out: list[tuple[YamlSource, RegistryFile, bool]],
) -> None:
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in [*seen, resolved])
        raise ConfigError(f"include cycle: {chain}", path=str(path))
    source = read_yaml(path)
    spec, has_env = _validate(source, environment)
    for i, inc in enumerate(spec.include):
        child = resolved.parent / inc
        if not child.is_file():
            raise source.error(f"included file not found: {child}", ("include", i))
        _read_all(child, environment, [*seen, resolved], out)
    out.append((source, spec, has_env))


def _build(
    files: list[tuple[YamlSource, RegistryFile, bool]],
    environment: str | None,
    env: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
    explicit_env: bool,
) -> YamlToolRegistry:
    root_source, root, _ = files[-1]
    if environment is not None and not any(h for _, _, h in files):
        declared = sorted({e for _, s, _ in files for e in s.environments})
        if declared or explicit_env:
            raise root_source.error(
                f"unknown environment {environment!r}; environments: "
                + (", ".join(declared) or "(none)"),
                ("environments",),
            )
        environment = None
    hosts = [h for _, s, _ in files for h in s.http.allowed_hosts or []]
    allow_listed = any(s.http.allowed_hosts is not None for _, s, _ in files)
    pool = HttpClientPool(
        root.http.model_copy(update={"allowed_hosts": hosts}), transport=transport
    )
    registry = YamlToolRegistry(
        pool=pool, sources=[s.path for s, _, _ in reversed(files)], environment=environment
    )
    first: dict[str, ToolEntry] = {}
    entries: list[ToolEntry] = []
    for source, spec, _ in files:
        for i, tool_spec in enumerate(spec.tools):
            entry = ToolEntry(tool_spec, source, ("tools", i))
            if tool_spec.name in first:
                other = first[tool_spec.name]
                raise entry.error(
                    f"duplicate tool name, first defined at {other.source.path}:"
                    f"{other.source.line(other.where)}",
                    "name",
                )
            first[tool_spec.name] = entry
            entries.append(entry)
    variables = os.environ if env is None else env
    check_environment(entries, variables)
    for entry in entries:
        registry.add(build_tool(entry, pool, env=env, allow_listed=allow_listed))
    for server in mcp_servers(files, variables):
        registry.add_source(server)
    return registry


def load_registry(
    path: str | Path,
    *,
    environment: str | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> YamlToolRegistry:
    """Load a YAML tool registry (and the files it includes).

    Args:
        path: The registry file.
        environment: Whose `environments:` overrides to apply (default: `$GLM_AGENT_ENV`).
        env: Variables for `${VAR}` in URLs, headers and auth (default: `os.environ`).
        transport: An httpx transport for the HTTP tools (default: the network).

    Raises:
        ConfigError: Naming the file, the line and the key of the first problem.
    """
    variables = os.environ if env is None else env
    explicit = environment is not None
    environment = environment if explicit else variables.get(ENV_VAR) or None
    files: list[tuple[YamlSource, RegistryFile, bool]] = []
    _read_all(Path(path), environment, [], files)
    return _build(files, environment, variables, transport, explicit)


def registry_from_spec(
    spec: RegistryFile | dict[str, Any],
    *,
    base_dir: str | Path = ".",
    environment: str | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> YamlToolRegistry:
    """A registry from an in-memory spec (e.g. one generated from OpenAPI). No includes.

    Args:
        spec: The registry, as a model or as the data of a YAML file.
        base_dir: Folder that `python:` bindings are imported from.
        environment: Whose overrides to apply.
        env: Variables for `${VAR}` (default: `os.environ`).
        transport: An httpx transport for the HTTP tools.
    """
    data = spec.model_dump(mode="json", by_alias=True) if isinstance(spec, RegistryFile) else spec
    source = YamlSource(str(Path(base_dir) / "<registry>"), copy.deepcopy(data))
    parsed, has_env = _validate(source, environment)
    if parsed.include:
        raise source.error("includes need a file: use load_registry", ("include",))
    return _build([(source, parsed, has_env)], environment, env, transport, environment is not None)
