"""`glm-agent tools`: list, validate and call the tools of a YAML registry (its MCP servers'
tools too: listing or calling starts them, and stops them when done)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from glm_agent.exceptions import ModelRetry, UserError

__all__ = ["app"]

app = typer.Typer(
    help="List, validate and call the tools of a YAML registry.", no_args_is_help=True
)

RegistryOption = Annotated[
    Path, typer.Option("--registry", "-r", help="The registry file.", show_default=True)
]
RegistryArgument = Annotated[
    Path | None,
    typer.Argument(
        help="The registry file (or give it with -r; default: tools.yaml).", show_default=False
    ),
]


def _registry(positional: Path | None, option: Path) -> Path:
    """The registry named positionally (`tools validate tools.yaml`) or with -r."""
    return positional if positional is not None else option


EnvOption = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Environment overrides to apply (default: $GLM_AGENT_ENV)."),
]


@app.command("list")
def list_tools(
    file: RegistryArgument = None,
    registry: RegistryOption = Path("tools.yaml"),
    env: EnvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print OpenAI tool JSON.")] = False,
) -> None:
    """List the tools of a registry."""
    from glm_agent._sync_bridge import run_sync
    from glm_agent.tools import load_registry, to_openai_tools

    reg = load_registry(_registry(file, registry), environment=env)
    # MCP servers are started to list their tools, and stopped again.
    run_sync(_ready(reg))
    try:
        if as_json:
            typer.echo(json.dumps(to_openai_tools(reg), indent=2, ensure_ascii=False))
            return
        from_server = {n: s.name for s in reg.tool_sources for n in s.tools}
        for t in reg:
            if t.name in from_server:
                binding = f"mcp:{from_server[t.name]}"
            else:
                binding = (type(t.function).__name__ == "HttpEndpoint" and "http") or "python"
            summary = (
                t.definition.description.strip().splitlines()[0] if t.definition.description else ""
            )
            typer.echo(f"{t.name}\t{binding}\t{summary}")
    finally:
        run_sync(reg.aclose())


async def _ready(reg: Any) -> None:
    """Start the registry's MCP servers; stop them again if that fails."""
    try:
        await reg.ready()
    except BaseException:
        await reg.aclose()
        raise


@app.command()
def validate(
    file: RegistryArgument = None,
    registry: RegistryOption = Path("tools.yaml"),
    env: EnvOption = None,
) -> None:
    """Load a registry and report the first problem (file:line (key): message)."""
    from glm_agent.tools import load_registry

    reg = load_registry(_registry(file, registry), environment=env)
    servers = f" and {len(reg.tool_sources)} MCP server(s)" if reg.tool_sources else ""
    typer.echo(f"ok: {len(reg)} tool(s){servers} in {', '.join(reg.sources)}")


@app.command()
def call(
    name: Annotated[str, typer.Argument(help="The tool to call.")],
    args: Annotated[str, typer.Option("--args", "-a", help="Arguments as a JSON object.")] = "{}",
    registry: RegistryOption = Path("tools.yaml"),
    env: EnvOption = None,
) -> None:
    """Call one tool with JSON arguments and print its result."""
    from glm_agent._sync_bridge import run_sync
    from glm_agent.tools import format_tool_result, load_registry

    try:
        arguments: Any = json.loads(args)
    except json.JSONDecodeError as e:
        raise UserError(f"--args is not valid JSON: {e}") from e
    if not isinstance(arguments, dict):
        raise UserError('--args must be a JSON object, e.g. \'{"order_id": "A-1"}\'')
    reg = load_registry(registry, environment=env)

    async def run() -> Any:
        async with reg:  # starts its MCP servers, stops them at the end
            return await reg.get(name).run(arguments)

    try:
        result = run_sync(run())
    except ModelRetry as e:
        # What the model would be told; a failed call is not a crash of the command.
        typer.secho(f"tool error: {e}", err=True, fg="red")
        raise typer.Exit(1) from None
    except TimeoutError:
        timeout = reg.get(name).policy.timeout
        typer.secho(f"tool error: {name!r} timed out after {timeout:g} s", err=True, fg="red")
        raise typer.Exit(1) from None
    typer.echo(format_tool_result(result))
