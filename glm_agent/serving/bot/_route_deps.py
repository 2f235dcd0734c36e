"""What the support bot's routes share: the bot, who is asking (a customer by token, a human
agent by console login) and event-stream helpers."""

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request

from glm_agent.exceptions import InvalidRequestError
from glm_agent.serving._deps import get_support
from glm_agent.serving._state import sse
from glm_agent.serving.bot import _console as console
from glm_agent.serving.bot._bot import SupportBot

__all__ = [
    "Bot",
    "address",
    "agent_name",
    "convo",
    "customer",
    "event_id",
    "event_stream",
    "sse_event",
]

Bot = Annotated[SupportBot, Depends(get_support)]


def address(request: Request) -> str:
    """The client's address (rate limits are per address)."""
    return request.client.host if request.client else ""


def event_id(header: str | None, default: int) -> int:
    """The `Last-Event-ID` a client resumes from (400 when it is not an event number)."""
    if header is None or not header.strip():
        return default
    if not re.fullmatch(r"[0-9]{1,18}", header.strip()):
        raise InvalidRequestError(
            f"Last-Event-ID must be an event number, got {header[:40]!r}", param="Last-Event-ID"
        )
    return int(header)


def sse_event(event: dict[str, Any]) -> str:
    """An event-log entry as a server-sent event (its sequence number as the event id)."""
    seq = event.pop("seq", None)
    return sse(event, event=event["type"], id=seq)


async def event_stream(
    request: Request,
    start: int,
    rows_after: Callable[[int], Awaitable[list[tuple[int, dict[str, Any]]]]],
) -> AsyncIterator[str]:
    """An event log as server-sent events: `: connected`, then every row after `start` as
    `rows_after(seen)` (which waits a while for new ones) gives them, a ping when a wait ends
    with none, until the client leaves."""
    seen = start
    yield ": connected\n\n"
    while not await request.is_disconnected():
        rows = await rows_after(seen)
        if not rows:
            yield ": ping\n\n"
        for seq, event in rows:
            seen = seq
            yield sse_event({**event, "seq": seq})


def customer(
    bot: Bot,
    conversation_id: str,
    x_customer_token: str | None = Header(default=None),
    token: str | None = Query(default=None),
) -> Any:
    """The conversation, when the request carries its customer's token."""
    return bot.conversation(conversation_id, x_customer_token or token or "")


def agent_name(bot: Bot, request: Request, authorization: str | None = Header(default=None)) -> str:
    """The logged-in human agent (bearer token or the console's cookie)."""
    raw = None
    if authorization and authorization.lower().startswith("bearer "):
        raw = authorization[7:].strip()
    return console.agent_for_token(bot, raw or request.cookies.get("console_token"))


def convo(bot: Bot, conversation_id: str) -> Any:
    """This tenant's conversation (for the console)."""
    return bot.conversation(conversation_id)
