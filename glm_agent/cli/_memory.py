"""`glm-agent sessions ...`: list, show and delete the sessions of a store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from glm_agent.messages import ImagePart, ToolMessage, UserMessage

if TYPE_CHECKING:
    from glm_agent.memory import SessionStore

app = typer.Typer(help="Conversation sessions in a memory store.", no_args_is_help=True)

T = TypeVar("T")

StoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="GLM_AGENT_STORE",
        help="Store URL: sqlite:///bot.db, redis://host:6379/0, postgresql://user@host/db.",
    ),
]
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant the sessions belong to.")]


def _with_store(url: str, fn: Callable[[SessionStore], Awaitable[T]]) -> T:
    from glm_agent.memory import open_store

    async def main() -> T:
        async with open_store(url) as store:
            return await fn(store)

    return asyncio.run(main())


def _time(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_command(
    store: StoreOption,
    tenant: TenantOption = "default",
    customer: Annotated[str | None, typer.Option(help="Only this customer's sessions.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only sessions in this status: bot, handed_off, closed.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most sessions to list.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List a tenant's sessions, most recently updated first."""
    from glm_agent.memory._session import check_status

    if status is not None:
        check_status(status)
    infos = _with_store(
        store,
        lambda s: s.list_sessions(
            tenant,
            customer_id=customer,
            status=status,  # type: ignore[arg-type]  # checked above
            limit=limit,
        ),
    )
    if as_json:
        for info in infos:
            typer.echo(info.model_dump_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("session", "version", "customer", "channel", "status", "updated", "expires")
    for i in infos:
        m = i.metadata
        table.add_row(
            i.session_id,
            str(i.version),
            m.customer_id or "-",
            m.channel or "-",
            m.status,
            _time(i.updated_at),
            _time(i.expires_at),
        )
    Console().print(table)


@app.command("show")
def show_command(
    session_id: Annotated[str, typer.Argument(help="The session to show.")],
    store: StoreOption,
    tenant: TenantOption = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the session as JSON.")] = False,
) -> None:
    """Show a session's metadata, summary and messages."""
    session = _with_store(store, lambda s: s.load(tenant, session_id))
    if session is None:
        typer.secho(f"no session {session_id!r} in tenant {tenant!r}", err=True, fg="red")
        raise typer.Exit(1)
    if as_json:
        typer.echo(session.model_dump_json(indent=2))
        return
    m = session.metadata
    typer.echo(
        f"session {session.session_id}  version {session.version}  status {m.status}  "
        f"customer {m.customer_id or '-'}  channel {m.channel or '-'}"
    )
    if session.summary is not None:
        typer.echo(f"summary (of {session.summary.covered} messages): {session.summary.text}")
    for msg in session.messages:
        d = msg.model_dump(exclude_none=True, exclude_defaults=True)
        text = d.pop("content", "")
        if isinstance(msg, UserMessage | ToolMessage) and not isinstance(msg.content, str):
            # An image is shown as what it is and where the store keeps it, never its bytes.
            marks = [
                f"[image {p.width}x{p.height} {p.url[:71]}]"
                if isinstance(p, ImagePart)
                else f"[video {p.url}]"
                for p in msg.media
            ]
            text = " ".join([msg.text, *marks]).strip()
        extra = f" {json.dumps(d, ensure_ascii=False)}" if d else ""
        typer.echo(f"[{msg.role}] {text}{extra}")


@app.command("delete")
def delete_command(
    store: StoreOption,
    session_id: Annotated[str | None, typer.Argument(help="The session to delete.")] = None,
    tenant: TenantOption = "default",
    customer: Annotated[
        str | None, typer.Option(help="Delete every session and fact of this customer instead.")
    ] = None,
) -> None:
    """Delete one session, or everything of one customer (--customer)."""
    if (session_id is None) == (customer is None):
        typer.secho("give either a SESSION_ID or --customer", err=True, fg="red")
        raise typer.Exit(2)
    if customer is not None:
        n = _with_store(store, lambda s: s.delete_customer(tenant, customer))
        typer.echo(f"deleted {n} session(s) and the long-term facts of customer {customer!r}")
        return
    assert session_id is not None
    if not _with_store(store, lambda s: s.delete(tenant, session_id)):
        typer.secho(f"no session {session_id!r} in tenant {tenant!r}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(f"deleted session {session_id!r}")
