"""`glm-agent support ...`: console accounts, exports and the summary of a support bot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "support_turns"]

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


@app.command("reset-demo")
def reset_demo(
    agent_yaml: AgentYaml,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Restore a demo: its own data (support.yaml's `demo_reset`), and no conversations.

    Deletes the bot's conversations, tickets, review items and the sessions of its tenant;
    curated answers and console accounts stay.
    """
    from glm_agent._sync_bridge import run_sync
    from glm_agent.serving.bot import SupportBot
    from glm_agent.tools._yaml_build import import_object

    if not yes:
        typer.confirm(f"Delete every conversation of the bot of {agent_yaml}?", abort=True)
    bot = SupportBot.from_yaml(agent_yaml, prepare=False)
    try:
        if bot.config.demo_reset:
            restored = import_object(bot.config.demo_reset, agent_yaml.resolve().parent)()
            typer.echo(f"demo data restored: {restored}")
        deleted = bot.db.clear_conversations(bot.tenant)

        async def sessions() -> int:
            infos = await bot.store.list_sessions(bot.tenant, limit=10**9)
            for info in infos:
                await bot.store.delete(bot.tenant, info.session_id)
            return len(infos)

        typer.echo(f"{deleted} conversation(s) and {run_sync(sessions())} session(s) deleted")
    finally:
        bot.close()


def support_turns(agent_yaml: Path, session: str | None, lines: Any) -> None:
    """Run customer messages through the support bot of `agent_yaml` (the CLI door of the one
    support pipeline: the same curated answers, policies, confirmations, handoff and records
    as the widget); print each reply.

    Args:
        agent_yaml: The agent.yaml with a support.yaml beside it.
        session: The CLI session (a conversation kept across invocations); None: a new one.
        lines: An iterable of customer messages (a list, or a prompt loop).
    """
    from glm_agent._sync_bridge import run_sync
    from glm_agent.serving.bot import SupportBot

    bot = SupportBot.from_yaml(agent_yaml)

    async def conversation() -> Any:
        key = f"cli:{session}" if session else None
        conv = bot.db.find_open(bot.tenant, "cli", key) if key else None
        if conv is None:
            conv, _, greeting = await bot.create_conversation("cli", key, None)
            if greeting and session is None:
                typer.echo(greeting)
        return conv

    async def say(conv: Any, text: str) -> None:
        async def show(event: dict[str, Any]) -> None:
            if event.get("type") == "message" and event.get("role") != "customer":
                typer.echo(event["text"])
            elif event.get("type") == "status" and event.get("status") == "waiting_human":
                typer.secho("[handed to a human agent]", err=True, fg="yellow")

        await bot.handle(conv.id, text, show)

    try:
        conv = run_sync(conversation())
        for text in lines:
            if text.strip():
                run_sync(say(conv, text))
    finally:
        bot.close()
