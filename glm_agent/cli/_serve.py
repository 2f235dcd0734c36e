"""`glm-agent chat` and `glm-agent serve` bodies, and `glm-agent keys ...`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "chat_loop", "serve_files"]

app = typer.Typer(help="API keys of the HTTP server (stored hashed).", no_args_is_help=True)


@app.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help="The tenant the key is bound to.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: chat, runs, sessions, knowledge, admin.")
    ] = "chat,runs,sessions",
    name: Annotated[str, typer.Option(help="A label shown in logs instead of the key.")] = "",
    rpm: Annotated[
        float | None, typer.Option(help="Rate limit of this key, requests per minute.")
    ] = None,
) -> None:
    """Create an API key: prints the raw key once, and the entry to add under `server.keys`."""
    import json

    from glm_agent.exceptions import UserError
    from glm_agent.serving import ApiKey, generate_key, hash_key
    from glm_agent.serving._config import SCOPES

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise UserError(f"unknown scopes {unknown or scopes!r}; scopes: {', '.join(SCOPES)}")
    raw = generate_key()
    entry: dict[str, Any] = {"hash": hash_key(raw), "tenant": tenant, "scopes": wanted}
    if name:
        entry["name"] = name
    if rpm is not None:
        entry["rate_limit"] = {"requests_per_minute": rpm}
    ApiKey.model_validate(entry)
    typer.echo(f"API key (shown once, store it now): {raw}")
    typer.echo("Add under `server: keys:` in agent.yaml (or to your keys_file):")
    typer.echo(f"  - {json.dumps(entry)}")


def _rich_console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def chat_loop(path: str, session: str | None, environment: str | None) -> None:
    """Read lines, stream the agent's answers with its tool calls, until EOF or /exit."""
    from glm_agent.agent_config import load_agent
    from glm_agent.messages import Message, ReasoningDelta, TextDelta, ToolCallEnd
    from glm_agent.results import RunDone, ToolResultEvent
    from glm_agent.serving.bot import find_support_config

    if find_support_config(path) is not None:
        # A support agent is reached only through its support pipeline.
        from glm_agent.cli._support import support_turns

        support_turns(Path(path), session, _prompt_lines())
        return
    agent = load_agent(path, environment=environment)
    console = _rich_console()
    session_id = session or "cli-" + uuid.uuid4().hex[:8]
    history: list[Message] | None = None  # kept here only when the agent has no memory
    console.print(
        f"[bold]{agent.name}[/] · session [cyan]{session_id}[/] · tools: "
        f"{', '.join(agent.tools.names) or '(none)'} · /new starts over, /exit quits"
    )
    while True:
        try:
            line = typer.prompt("you", prompt_suffix="> ").strip()
        except (typer.Abort, EOFError):
            console.print()
            return
        if line in ("/exit", "/quit"):
            return
        if line == "/new":
            session_id, history = "cli-" + uuid.uuid4().hex[:8], None
            console.print(f"new session [cyan]{session_id}[/]")
            continue
        if not line:
            continue
        kwargs: dict[str, Any] = {"session_id": session_id}
        if agent.memory is None:
            kwargs["message_history"] = history
        console.print(f"[bold green]{agent.name}[/]> ", end="")
        for event in agent.stream(line, **kwargs):
            if isinstance(event, TextDelta):
                console.print(event.content, end="", markup=False)
            elif isinstance(event, ReasoningDelta):
                console.print(event.content, end="", style="dim", markup=False)
            elif isinstance(event, ToolCallEnd):
                call = event.call
                console.print(f"\n  → {call.name}({call.arguments})", style="cyan", markup=False)
            elif isinstance(event, ToolResultEvent):
                style = "cyan" if event.status == "ok" else "red"
                text = f"  ← {event.call.name} [{event.status}] {event.content[:300]}"
                console.print(text, style=style, markup=False)
            elif isinstance(event, RunDone):
                console.print()
                history = list(event.result.messages)


def _prompt_lines() -> Any:
    """Customer lines typed at a `you>` prompt, until EOF or /exit."""
    while True:
        try:
            line = typer.prompt("you", prompt_suffix="> ").strip()
        except (typer.Abort, EOFError):
            return
        if line in ("/exit", "/quit"):
            return
        yield line


def serve_files(
    paths: list[Path],
    host: str,
    port: int,
    workers: int,
    environment: str | None,
    config: Path | None,
    log_level: str,
) -> None:
    """Serve the agents of `paths` until interrupted."""
    from glm_agent.serving import serve

    serve(
        paths,
        host=host,
        port=port,
        workers=workers,
        environment=environment,
        server_config=config,
        log_level=log_level,
    )
