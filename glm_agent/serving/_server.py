"""Apps from agent.yaml files, and running them under uvicorn with a graceful shutdown."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm_agent.serving._config import ServerConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app_from_env", "app_from_yaml", "configure_logging", "make_server", "serve"]

_ENV_VAR = "GLM_AGENT_SERVE"


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for the server's loggers (access lines carry the request id)."""
    from glm_agent.serving._middleware import JsonLogFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    for name in ("glm_agent.serving", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def app_from_yaml(
    paths: Sequence[str | Path],
    *,
    environment: str | None = None,
    server_config: str | Path | None = None,
) -> FastAPI:
    """An app serving the agents of several agent.yaml files.

    Server settings come from `server_config` (a YAML file of `ServerConfig` fields), else from
    the `server:` section of the first agent.yaml that has one.

    Raises:
        ConfigError: naming the file, line and key of a bad setting.
    """
    from glm_agent._yaml_source import read_yaml
    from glm_agent.agent_config import DATA_DIR, load_agent_config
    from glm_agent.exceptions import ConfigError
    from glm_agent.serving._app import create_app
    from glm_agent.serving._state import ServedAgent
    from glm_agent.serving.bot import find_support_config

    served: list[ServedAgent] = []
    raw: dict[str, Any] | None = None
    base = Path.cwd()
    source = ""
    if server_config is not None:
        raw = read_yaml(server_config).substitute_env().mapping()
        base, source = Path(server_config).parent, str(server_config)
    for p in paths:
        cfg = load_agent_config(p, environment)
        served.append(
            ServedAgent(
                cfg.build(),
                run_timeout=cfg.limits.run_timeout,
                data_dir=cfg.base_dir / DATA_DIR / cfg.name,
                description=cfg.description,
                mcp=find_support_config(p) is None,
            )
        )
        if raw is None and cfg.server is not None:
            raw, base, source = cfg.server, cfg.base_dir, str(p)
    try:
        config = ServerConfig.model_validate(raw or {})
        keys = config.load_keys(base)
    except ValueError as e:
        raise ConfigError(f"bad server settings: {e}", path=source or None, key="server") from None
    app = create_app(
        served,
        config=config,
        keys=keys,
        close_stores=True,
        support=_support_bot(paths, served),
    )
    return app


def _support_bot(paths: Sequence[str | Path], served: Sequence[Any]) -> Any:
    """The customer-service bot of the agent.yaml that has a `support.yaml` beside it (its
    widget, console and channels are served, and its agent is reached only through it).

    Raises:
        ConfigError: More than one of the files has a support.yaml (one bot per server).
    """
    from glm_agent.exceptions import ConfigError
    from glm_agent.serving.bot import SupportBot, find_support_config

    with_bot = [(p, s) for p, s in zip(paths, served, strict=True) if find_support_config(p)]
    if len(with_bot) > 1:
        names = ", ".join(str(p) for p, _ in with_bot)
        raise ConfigError(
            f"one server runs one support bot; these agent.yaml files each have a "
            f"support.yaml: {names}; serve them separately"
        )
    if not with_bot:
        return None
    path, agent = with_bot[0]
    return SupportBot.from_yaml(path, agent=agent.agent)


def startup_banner(paths: Sequence[str | Path], host: str, port: int) -> str:
    """What `glm-agent serve` prints first: where each door of the served agents is."""
    import yaml

    from glm_agent.serving.bot import find_support_config

    shown = "localhost" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    names = []
    for p in paths:
        try:
            names.append(str((yaml.safe_load(Path(p).read_text(encoding="utf-8")) or {})["name"]))
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            names.append(Path(p).stem)
    lines = [f"glm-agent: serving {', '.join(names)} on {base}"]
    if any(find_support_config(p) for p in paths):
        lines += [
            f"  customers (the widget):  {base}/widget-demo",
            f"  human agents (console):  {base}/console",
        ]
    lines.append(f"  OpenAI-compatible API:   {base}/v1   (model: {names[0]})")
    lines.append(f"  agent API and docs:      {base}/docs")
    return "\n".join(lines)


def app_from_env() -> FastAPI:
    """The app described by `$GLM_AGENT_SERVE` (how `serve` hands its arguments to workers)."""
    spec = json.loads(os.environ[_ENV_VAR])
    configure_logging(spec.get("log_level", "info"))
    return app_from_yaml(
        spec["paths"], environment=spec.get("environment"), server_config=spec.get("config")
    )


def serve(
    paths: Sequence[str | Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    environment: str | None = None,
    server_config: str | Path | None = None,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
) -> None:
    """Serve agent.yaml files with uvicorn until interrupted.

    On SIGTERM / Ctrl-C the server stops accepting connections, ends open streams with a last
    event and `[DONE]`, and waits up to `graceful_timeout` seconds for runs in flight.
    """
    from glm_agent.exceptions import MissingDependencyError

    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError("uvicorn", "serve", "glm-agent serve") from None
    configure_logging(log_level)
    print(startup_banner(paths, host, port), flush=True)
    if workers > 1:
        # Workers are separate processes: they rebuild the app from the same arguments.
        os.environ[_ENV_VAR] = json.dumps(
            {
                "paths": [str(Path(p).resolve()) for p in paths],
                "environment": environment,
                "config": str(Path(server_config).resolve()) if server_config else None,
                "log_level": log_level,
            }
        )
        uvicorn.run(
            "glm_agent.serving._server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=int(graceful_timeout),
        )
        return
    app = app_from_yaml(paths, environment=environment, server_config=server_config)
    make_server(
        app, host=host, port=port, log_level=log_level, graceful_timeout=graceful_timeout
    ).run()


def make_server(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
) -> Any:
    """A `uvicorn.Server` for `app` that ends the app's open streams cleanly on exit.

    Run it with `.run()` (it installs signal handlers in the main thread) or in a thread
    and stop it with `.should_exit = True` after `app.state.glm.request_shutdown()`.
    """
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.glm.request_shutdown()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=int(graceful_timeout),
        log_config=None,
        ws="none",
    )
    return DrainingServer(config)
