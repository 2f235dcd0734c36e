"""`glm-agent mcp serve FILE`: a YAML tool registry, or an agent.yaml (the agent as one tool, its
knowledge base as a search tool and resources), served over MCP on stdio or Streamable HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

__all__ = ["app", "exposure_from_file"]

app = typer.Typer(help="Serve tools, agents and knowledge over MCP.", no_args_is_help=True)


def _is_registry(path: Path) -> bool:
    from glm_agent._yaml_source import read_yaml

    data = read_yaml(path).data
    return isinstance(data, dict) and "version" in data


def exposure_from_file(
    path: Path,
    *,
    environment: str | None = None,
    tenant: str = "default",
    expose: list[str] | None = None,
) -> tuple[Any, dict[str, Any] | None, Path]:
    """What `mcp serve` offers for a file, its raw `server:` settings, and their folder.

    A registry file (it has `version:`) offers its tools. An agent.yaml offers its agent as one
    tool and its knowledge base as `search_knowledge` and `kb://knowledge/...` resources (`expose`
    picks among `agent` and `knowledge`). A support agent (a support.yaml beside it) is reached
    through its support bot only, so only its knowledge is offered; its `knowledge_sources` are
    ingested first, as the bot does at start.

    Raises:
        UserError: `expose` names something unknown, or the agent of a support bot.
    """
    from glm_agent.exceptions import UserError
    from glm_agent.serving._mcp_server import MCPExposure

    if _is_registry(path):
        from glm_agent.tools import load_registry

        registry = load_registry(path, environment=environment)
        return MCPExposure(tools=registry, default_tenant=tenant), None, path.parent
    from glm_agent.agent_config import load_agent_config
    from glm_agent.serving.bot import find_support_config

    support = find_support_config(path)
    wanted = expose or (["knowledge"] if support else ["agent", "knowledge"])
    if unknown := [w for w in wanted if w not in ("agent", "knowledge")]:
        raise UserError(f"--expose: unknown {', '.join(unknown)}; valid: agent, knowledge")
    if support is not None and "agent" in wanted:
        raise UserError(
            f"{path} is a support bot's agent ({support} is beside it): it is reached through "
            "the bot only (glm-agent serve); serve its knowledge with --expose knowledge"
        )
    cfg = load_agent_config(path, environment)
    agent = cfg.build()
    kb = agent.knowledge if "knowledge" in wanted else None
    if kb is not None and support is not None:
        _ingest_sources(kb, support)
    exposure = MCPExposure(
        agents=[agent] if "agent" in wanted else [],
        knowledge={"knowledge": kb} if kb is not None else None,
        default_tenant=tenant,
    )
    return exposure, cfg.server, cfg.base_dir


def _ingest_sources(kb: Any, support: Path) -> None:
    """Ingest a support bot's `knowledge_sources` (incremental), as the bot does at start."""
    from glm_agent._yaml_source import read_yaml

    data = read_yaml(support).substitute_env().mapping()
    for source in data.get("knowledge_sources") or []:
        kb.ingest(support.parent / source)


@app.command()
def serve(
    file: Annotated[Path, typer.Argument(help="A YAML tool registry or an agent.yaml.")],
    transport: Annotated[
        str, typer.Option("--transport", "-t", help="stdio (for a client that starts it) or http.")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="Interface to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (http).")] = 8000,
    path: Annotated[str, typer.Option(help="Endpoint path (http).")] = "/mcp",
    env: Annotated[str | None, typer.Option("--env", help="An `environments:` overlay.")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Server settings YAML with API keys (default: agent.yaml server:)."),
    ] = None,
    tenant: Annotated[str, typer.Option(help="The tenant of stdio calls.")] = "default",
    expose: Annotated[
        list[str] | None,
        typer.Option(help="For an agent.yaml: agent and/or knowledge (repeatable)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "warning",
) -> None:
    """Serve a tool registry or an agent over MCP (stdio by default; --transport http for
    Streamable HTTP behind the server's API keys: each key's tenant scopes its calls)."""
    import logging
    import sys

    from glm_agent.exceptions import UserError

    kind: Literal["stdio", "http"]
    if transport == "stdio":
        kind = "stdio"
    elif transport in ("http", "streamable-http"):
        kind = "http"
    else:
        raise UserError(f"unknown transport {transport!r}; valid: stdio, http")
    if not file.is_file():
        raise UserError(f"{str(file)!r} is not a file")
    # stdout carries the protocol on stdio: logs go to stderr only.
    logging.basicConfig(stream=sys.stderr, level=log_level.upper())
    exposure, raw_server, base = exposure_from_file(
        file, environment=env, tenant=tenant, expose=expose
    )
    if kind == "stdio":
        import anyio

        from glm_agent.serving._mcp_http import serve_mcp_stdio

        anyio.run(serve_mcp_stdio, exposure)
        return
    _serve_http(exposure, raw_server, base, config, host, port, path, log_level)


def _serve_http(
    exposure: Any,
    raw_server: dict[str, Any] | None,
    base: Path,
    config_file: Path | None,
    host: str,
    port: int,
    path: str,
    log_level: str,
) -> None:
    from glm_agent._yaml_source import read_yaml
    from glm_agent.exceptions import ConfigError, MissingDependencyError
    from glm_agent.serving import ServerConfig
    from glm_agent.serving._mcp_http import mcp_http_app

    source = "server"
    if config_file is not None:
        raw_server = read_yaml(config_file).substitute_env().mapping()
        base, source = config_file.parent, str(config_file)
    try:
        settings = ServerConfig.model_validate(raw_server or {})
        keys = settings.load_keys(base)
    except ValueError as e:
        raise ConfigError(f"bad server settings: {e}", path=source, key="server") from None
    try:
        import uvicorn
    except ImportError as e:
        raise MissingDependencyError(e.name or "uvicorn", "serve", "MCP over HTTP") from None
    app = mcp_http_app(exposure, config=settings, keys=keys, path=path, host=host)
    typer.echo(f"MCP server on http://{host}:{port}{path}", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
