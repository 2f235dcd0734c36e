"""The `glm-agent` command line. Errors are mapped to messages and exit codes in one place."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer

from glm_agent.exceptions import GlmAgentError, RunError, UserError

__all__ = ["app", "main"]

app = typer.Typer(
    name="glm-agent",
    help="Tool-using, retrieval-augmented agents on GLM models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Sub-command groups, each in its own module; imported when the CLI starts (they import their
# heavy dependencies inside the commands only).
_GROUPS: dict[str, str] = {}


def _mount_groups() -> None:
    for name, module in _GROUPS.items():
        sub = importlib.import_module(module).app
        app.add_typer(sub, name=name)


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


@app.command()
def run(
    prompt: Annotated[str, typer.Argument(help="The question to ask the agent.")],
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
    """Run an agent once on a question and print the answer."""
    from glm_agent.agent import Agent
    from glm_agent.messages import TextDelta
    from glm_agent.results import RunDone, ToolResultEvent

    agent: Agent[str] = Agent(
        model,
        tools=[_load_tool(t) for t in tools or []],
        system_prompt=system,
        max_steps=max_steps,
    )
    if not stream:
        typer.echo(agent.run(prompt).output)
        return
    for event in agent.stream(prompt):
        if isinstance(event, TextDelta):
            typer.echo(event.content, nl=False)
        elif isinstance(event, ToolResultEvent):
            typer.secho(f"[{event.call.name}] {event.content[:200]}", err=True, fg="cyan")
        elif isinstance(event, RunDone):
            typer.echo()


def main() -> None:
    """Entry point of the `glm-agent` script."""
    _mount_groups()
    try:
        app()
    except UserError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise SystemExit(2) from None
    except RunError as e:
        typer.secho(f"run failed: {e}", err=True, fg="red")
        raise SystemExit(1) from None
    except GlmAgentError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise SystemExit(1) from None
