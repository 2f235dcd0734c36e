"""Serving: an OpenAI-compatible HTTP API and an agent API for glm-agent agents.

```python
from glm_agent.serving import create_app
app = create_app([agent])            # FastAPI; run with uvicorn
```

or `glm-agent serve agent.yaml`; over MCP, `mcp_http_app(MCPExposure(agents=[agent]))` or
`glm-agent mcp serve`. FastAPI, uvicorn and prometheus_client are imported only when
an app is built, so importing this package stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm_agent.serving._config import (
    ApiKey,
    KeyRing,
    RateLimit,
    ServerConfig,
    TokenBucket,
    generate_key,
    hash_key,
)
from glm_agent.serving._errors import HTTPProblem, error_body, problem_for
from glm_agent.serving._mcp_http import MCPHttp, mcp_http_app, serve_mcp_stdio
from glm_agent.serving._mcp_server import MCPExposure, mcp_server
from glm_agent.serving._state import ServedAgent

if TYPE_CHECKING:
    from fastapi import FastAPI

    from glm_agent.agent import Agent
    from glm_agent.models.base import ChatModel
    from glm_agent.serving.bot import SupportBot

__all__ = [
    "ApiKey",
    "HTTPProblem",
    "KeyRing",
    "MCPExposure",
    "MCPHttp",
    "RateLimit",
    "ServedAgent",
    "ServerConfig",
    "TokenBucket",
    "app_from_yaml",
    "create_app",
    "error_body",
    "generate_key",
    "hash_key",
    "make_server",
    "mcp_http_app",
    "mcp_server",
    "problem_for",
    "serve",
    "serve_mcp_stdio",
]


def _missing(e: ImportError) -> Exception:
    from glm_agent.exceptions import MissingDependencyError

    return MissingDependencyError(e.name or "fastapi", "serve", "the HTTP server")


def create_app(
    agents: Sequence[Agent[Any] | ServedAgent] = (),
    *,
    models: Mapping[str, ChatModel | str] | None = None,
    config: ServerConfig | None = None,
    keys: Sequence[ApiKey] | None = None,
    support: SupportBot | None = None,
) -> FastAPI:
    """The FastAPI app serving `agents` and plain `models` (see `glm_agent.serving._app`).

    Args:
        agents: Agents, each served under its name.
        models: Plain models by name (client tools are passed through to them).
        config: Server settings (keys, limits, CORS).
        keys: API keys (default: those of `config`; none: an open server).
        support: A support bot: its routes, widget and console, and its agent reached only
            through it at every door.
    """
    try:
        from glm_agent.serving._app import create_app as build
    except ImportError as e:
        raise _missing(e) from None
    return build(agents, models=models, config=config, keys=keys, support=support)


def app_from_yaml(
    paths: Sequence[str | Path],
    *,
    environment: str | None = None,
    server_config: str | Path | None = None,
) -> FastAPI:
    """The app serving the agents of agent.yaml files (server settings from their `server:`)."""
    from glm_agent.serving._server import app_from_yaml as build

    return build(paths, environment=environment, server_config=server_config)


def make_server(app: FastAPI, **kwargs: Any) -> Any:
    """A uvicorn server for `app` that ends open streams cleanly on shutdown."""
    from glm_agent.serving._server import make_server as build

    return build(app, **kwargs)


def serve(paths: Sequence[str | Path], **kwargs: Any) -> None:
    """Serve agent.yaml files with uvicorn (host, port, workers, environment, server_config)."""
    from glm_agent.serving._server import serve as run

    run(paths, **kwargs)
