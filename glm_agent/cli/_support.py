"""`glm-agent support ...`: console accounts, exports and the summary of a support bot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="Manage a customer-service bot (support.yaml).", no_args_is_help=True)

AgentYaml = Annotated[Path, typer.Argument(help="The agent.yaml (support.yaml beside it).")]


@app.command("hash-password")
def hash_password_cmd(
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password.")
    ],
) -> None:
    """Print the hash of a console password, for `console_accounts:` in support.yaml."""
    from glm_agent.serving.bot import hash_password

    typer.echo(hash_password(password))


@app.command()
def export(
    agent_yaml: AgentYaml,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("-o", help="File (default: stdout).")] = None,
) -> None:
    """Export every conversation's transcript (PII redacted) with its tags."""
    if format not in ("jsonl", "csv"):
        raise typer.BadParameter(f"unknown format {format!r}; formats: jsonl, csv")
    from glm_agent.serving.bot import SupportBot
    from glm_agent.serving.bot._records import export as export_records

    bot = SupportBot.from_yaml(agent_yaml, prepare=False)
    try:
        body, _ = export_records(bot, format)
    finally:
        bot.close()
    if output is None:
        typer.echo(body, nl=False)
    else:
        output.write_text(body, encoding="utf-8")


@app.command()
def summary(agent_yaml: AgentYaml) -> None:
    """Print counts and rates (conversations, handoff rate, curated-answer rate, CSAT)."""
    from glm_agent.serving.bot import SupportBot
    from glm_agent.serving.bot._records import summary as summarize

    bot = SupportBot.from_yaml(agent_yaml, prepare=False)
    try:
        typer.echo(json.dumps(summarize(bot), indent=2, ensure_ascii=False))
    finally:
        bot.close()
