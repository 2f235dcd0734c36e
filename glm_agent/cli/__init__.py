"""The `glm-agent` command line. Errors are mapped to messages and exit codes in one place."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from glm_agent._scrub import scrub
from glm_agent.exceptions import GlmAgentError, RunError, UserError

__all__ = ["app", "main"]

app = typer.Typer(
    name="glm-agent",
    help="Tool-using, retrieval-augmented agents on GLM models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from glm_agent import __version__

        typer.echo(f"glm-agent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Tool-using, retrieval-augmented agents on GLM models."""


# Sub-command groups, each in its own module; imported when the CLI starts (they import their
# heavy dependencies inside the commands only).
_GROUPS: dict[str, str] = {
    "kb": "glm_agent.cli._kb",
    "keys": "glm_agent.cli._serve",
    "mcp": "glm_agent.cli._mcp",
    "runtime": "glm_agent.cli._runtime",
    "sessions": "glm_agent.cli._memory",
    "support": "glm_agent.cli._support",
    "tools": "glm_agent.cli._tools",
}


# Single commands kept in their own modules (module, function).
_COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("glm_agent.cli._eval", "eval_command"),
    "eval-import": ("glm_agent.cli._eval", "eval_import_command"),
}


def _mount_groups() -> None:
    mounted = {group.name for group in app.registered_groups}
    for name, module in _GROUPS.items():
        if name in mounted:
            continue
        sub = importlib.import_module(module).app
        app.add_typer(sub, name=name)
    commands = {command.name for command in app.registered_commands}
    for name, (module, function) in _COMMANDS.items():
        if name not in commands:
            app.command(name)(getattr(importlib.import_module(module), function))


@app.command()
def version() -> None:
    """Print the glm-agent version."""
    from glm_agent import __version__

    typer.echo(__version__)


def _load_tool(spec: str) -> Any:
    """A tool from `package.module:function`."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise UserError(f"tool {spec!r} must look like package.module:function")
    sys.path.insert(0, ".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"cannot load tool {spec!r}: {e}") from e


def _is_agent_file(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml")) and Path(arg).is_file()


@app.command()
def run(
    target: Annotated[
        str, typer.Argument(help="An agent.yaml, or the question (with --model / --tool).")
    ],
    question: Annotated[
        str | None, typer.Argument(help="The question, when the first argument is a yaml.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Continue (and extend) this session.")
    ] = None,
    env: Annotated[str | None, typer.Option("--env", help="An `environments:` overlay.")] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="A model string (test, a checkpoint, vllm:...).")
    ] = "test",
    tools: Annotated[
        list[str] | None,
        typer.Option("--tool", "-t", help="A tool as package.module:function (repeatable)."),
    ] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is generated.")] = True,
    max_steps: Annotated[int, typer.Option(help="Most model turns.")] = 10,
) -> None:
    """Run an agent once: `run agent.yaml "question"` or `run "question" --model --tool`."""
    from glm_agent.agent import Agent
    from glm_agent.messages import TextDelta
    from glm_agent.results import RunDone, ToolResultEvent

    agent: Agent[Any]
    if _is_agent_file(target):
        if question is None:
            raise UserError(f'give the question after the file: glm-agent run {target} "..."')
        from glm_agent.serving.bot import find_support_config

        if find_support_config(target) is not None:
            # A support agent is reached only through its support pipeline.
            from glm_agent.cli._support import support_turns

            support_turns(Path(target), session, [question])
            return
        from glm_agent.agent_config import load_agent

        agent, prompt = load_agent(target, environment=env), question
    else:
        if question is not None:
            raise UserError(
                f"{target!r} is not an agent.yaml file; the form without one is "
                'glm-agent run "question" --model M --tool module:function'
            )
        agent, prompt = (
            Agent(
                model,
                tools=[_load_tool(t) for t in tools or []],
                system_prompt=system,
                max_steps=max_steps,
            ),
            target,
        )
    if not stream:
        typer.echo(agent.run(prompt, session_id=session).output)
        return
    for event in agent.stream(prompt, session_id=session):
        if isinstance(event, TextDelta):
            typer.echo(event.content, nl=False)
        elif isinstance(event, ToolResultEvent):
            typer.secho(f"[{event.call.name}] {event.content[:200]}", err=True, fg="cyan")
        elif isinstance(event, RunDone):
            typer.echo()


@app.command()
def chat(
    agent_file: Annotated[str, typer.Argument(help="The agent.yaml.")],
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Continue this session.")
    ] = None,
    env: Annotated[str | None, typer.Option("--env", help="An `environments:` overlay.")] = None,
) -> None:
    """Chat with an agent in the terminal: streamed answers, tool calls shown as they happen."""
    from glm_agent.cli._serve import chat_loop

    chat_loop(agent_file, session, env)


@app.command()
def serve(
    agent_files: Annotated[list[Path], typer.Argument(help="One or more agent.yaml files.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    env: Annotated[str | None, typer.Option("--env", help="An `environments:` overlay.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Server settings YAML (default: the yaml's server:).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Serve agents over an OpenAI-compatible HTTP API (and the agent API)."""
    from glm_agent.cli._serve import serve_files

    serve_files(agent_files, host, port, workers, env, config, log_level)


def main() -> None:
    """Entry point of the `glm-agent` script."""
    _mount_groups()
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except UserError as e:
        typer.secho(f"error: {scrub(str(e))}", err=True, fg="red")
        raise SystemExit(2) from None
    except RunError as e:
        typer.secho(f"run failed: {scrub(str(e))}", err=True, fg="red")
        raise SystemExit(1) from None
    except GlmAgentError as e:
        typer.secho(f"error: {scrub(str(e))}", err=True, fg="red")
        raise SystemExit(1) from None
