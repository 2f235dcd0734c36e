"""The support bot's HTTP API, one module-level router: /v1/support (customers), /v1/console
(human agents), /v1/channels (webhook, Feishu). Routes reach the bot through `get_support`."""

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from glm_agent.exceptions import InvalidRequestError
from glm_agent.media import IMAGE_TYPES
from glm_agent.serving._deps import JsonRoute, sse_response
from glm_agent.serving.bot import _console as console
from glm_agent.serving.bot import _records as records
from glm_agent.serving.bot._bot import SupportBot
from glm_agent.serving.bot._images import accepts_images
from glm_agent.serving.bot._media_routes import CustomerMessage
from glm_agent.serving.bot._media_routes import router as media_router
from glm_agent.serving.bot._route_deps import (
    Bot,
    address,
    agent_name,
    convo,
    customer,
    event_id,
    event_stream,
    sse_event,
)

__all__ = ["create_bot_app", "router"]


class NewConversation(BaseModel):
    """POST /v1/support/conversations: a web (widget) conversation.

    Conversations of the webhook and Feishu channels are created by those channels' signed
    requests only: nobody can open one in a channel customer's name from here.
    """

    model_config = {"extra": "forbid"}  # a customer_id here would be a claim nobody checked

    channel: Literal["web"] = "web"
    locale: Literal["zh", "en"] | None = None


Short = Annotated[str, Field(max_length=200)]
Text = Annotated[str, Field(max_length=4000)]
_MAX_ROW = 2**63 - 1
"""SQLite's largest integer: a larger id or event number would crash the query, not miss."""
RowId = Annotated[int, Path(ge=0, le=_MAX_ROW)]
After = Annotated[int | None, Query(ge=0, le=_MAX_ROW)]


class NewMessage(BaseModel):
    """Console replies."""

    text: str = Field(min_length=1, max_length=4000)


class Feedback(BaseModel):
    """POST .../feedback."""

    message_id: int = Field(ge=0, le=2**53)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=2000)


class HandoffRequest(BaseModel):
    """POST .../handoff."""

    reason: str | None = Field(default=None, max_length=500)


class Login(BaseModel):
    """POST /v1/console/login."""

    username: Short
    password: str = Field(max_length=1000)


class CuratedBody(BaseModel):
    """A curated answer."""

    question: Text
    answer: Text
    variants: list[Text] = Field(default_factory=list, max_length=100)


class PromoteBody(BaseModel):
    """POST /v1/console/review/{id}/promote (empty fields keep the item's)."""

    question: Text | None = None
    answer: Text | None = None
    variants: list[Text] = Field(default_factory=list, max_length=100)


class Tags(BaseModel):
    """PATCH .../tags: a few short values (intent, resolution, csat...)."""

    model_config = {"extra": "allow"}

    def items_checked(self) -> dict[str, Any]:
        """The tags, with their sizes checked."""
        data = self.model_dump()
        if len(data) > 20:
            raise InvalidRequestError("at most 20 tags at once", param="tags")
        for key, value in data.items():
            if len(key) > 50 or len(str(value)) > 200:
                raise InvalidRequestError(f"tag {key[:50]!r} is too long", param=key[:50])
        return data


router = APIRouter(route_class=JsonRoute)


# --- customers ---------------------------------------------------------------------------


@router.get("/v1/support/info")
async def info(bot: Bot) -> dict[str, Any]:
    """What the widget shows before a conversation starts: the bot's name, and whether (and
    how large) photos can be sent."""
    name = bot.config.display_name
    names = name if isinstance(name, dict) else {"zh": name, "en": name}
    images = bot.config.images
    return {
        "name": next(iter(names.values()), "Support"),
        "names": names,
        "images": {
            "accepted": accepts_images(images, bot.agent.model),
            "max_bytes": images.max_bytes,
            "max_per_message": images.max_per_message,
            "types": list(IMAGE_TYPES),
        },
    }


@router.post("/v1/support/conversations", status_code=201)
async def create(bot: Bot, body: NewConversation, request: Request) -> dict[str, Any]:
    bot.conversation_limiter.check(address(request))
    conv, token, greeting = await bot.create_conversation(body.channel, None, body.locale)
    return {
        "conversation_id": conv.id,
        "customer_token": token,
        "status": conv.status,
        "greeting": greeting,
    }


@router.post("/v1/support/conversations/{conversation_id}/messages")
async def send(
    bot: Bot, body: CustomerMessage, conv: Annotated[Any, Depends(customer)], request: Request
) -> Any:
    bot.message_limiter.check(address(request))
    message = body.message()

    async def events() -> AsyncIterator[str]:
        async for event in bot.send(conv, message):
            yield sse_event(dict(event))

    return sse_response(events())


@router.get("/v1/support/conversations/{conversation_id}/events")
async def events(
    bot: Bot,
    request: Request,
    conv: Annotated[Any, Depends(customer)],
    after: After = None,
    last_event_id: str | None = Header(default=None),
) -> Any:
    start = after if after is not None else event_id(last_event_id, 0)

    async def rows_after(seen: int) -> list[tuple[int, dict[str, Any]]]:
        return await bot.events_after(conv.id, seen, timeout=bot.heartbeat)

    return sse_response(event_stream(request, start, rows_after))


@router.get("/v1/support/conversations/{conversation_id}")
async def get_conversation(bot: Bot, conv: Annotated[Any, Depends(customer)]) -> dict[str, Any]:
    return {
        "conversation_id": conv.id,
        "status": conv.status,
        "agent": conv.assigned_to,
        "messages": console.transcript(bot, conv),
        "tags": {k: v for k, v in conv.tags.items() if k != "ratings"},
    }


@router.post("/v1/support/conversations/{conversation_id}/feedback")
async def feedback(
    bot: Bot, body: Feedback, conv: Annotated[Any, Depends(customer)], request: Request
) -> dict[str, Any]:
    bot.message_limiter.check(address(request))
    console.add_feedback(bot, conv, body.message_id, body.rating, body.comment)
    return {"ok": True}


@router.post("/v1/support/conversations/{conversation_id}/handoff")
async def handoff(
    bot: Bot, body: HandoffRequest, conv: Annotated[Any, Depends(customer)], request: Request
) -> dict[str, Any]:
    bot.message_limiter.check(address(request))
    reason = "customer clicked 'talk to a human'" + (f": {body.reason}" if body.reason else "")
    ticket = await bot.handoff(conv, reason, "customer_request")
    return {"status": bot.conversation(conv.id).status, "ticket_id": ticket or None}


# --- console -----------------------------------------------------------------------------


@router.post("/v1/console/login")
async def login(bot: Bot, body: Login, request: Request) -> Any:
    client = request.client.host if request.client else ""
    token = await console.login(bot, body.username, body.password, client)
    out = JSONResponse({"token": token, "username": body.username})
    out.set_cookie(
        "console_token",
        token,
        httponly=True,
        samesite="strict",
        max_age=int(bot.config.token_ttl_seconds),
    )
    return out


@router.post("/v1/console/logout")
async def logout(
    bot: Bot, request: Request, authorization: str | None = Header(default=None)
) -> Any:
    """Revoke the console token on the server and clear the login cookie."""
    raw = None
    if authorization and authorization.lower().startswith("bearer "):
        raw = authorization[7:].strip()
    revoked = console.logout(bot, raw or request.cookies.get("console_token"))
    out = JSONResponse({"logged_out": revoked})
    out.delete_cookie("console_token")
    return out


@router.get("/v1/console/queue")
async def queue(bot: Bot, agent: Annotated[str, Depends(agent_name)]) -> list[dict[str, Any]]:
    return console.queue(bot)


@router.get("/v1/console/conversations/{conversation_id}")
async def detail(
    bot: Bot, agent: Annotated[str, Depends(agent_name)], conv: Annotated[Any, Depends(convo)]
) -> dict[str, Any]:
    return console.conversation_detail(bot, conv)


@router.post("/v1/console/conversations/{conversation_id}/take")
async def take(
    bot: Bot, agent: Annotated[str, Depends(agent_name)], conv: Annotated[Any, Depends(convo)]
) -> dict[str, Any]:
    await console.take(bot, conv, agent)
    return {"status": "with_human", "assigned_to": agent}


@router.post("/v1/console/conversations/{conversation_id}/reply")
async def reply(
    bot: Bot,
    body: NewMessage,
    agent: Annotated[str, Depends(agent_name)],
    conv: Annotated[Any, Depends(convo)],
) -> dict[str, Any]:
    message_id = await console.reply(bot, conv, agent, body.text)
    return {"message_id": message_id, "status": bot.conversation(conv.id).status}


@router.post("/v1/console/conversations/{conversation_id}/release")
async def release(
    bot: Bot, agent: Annotated[str, Depends(agent_name)], conv: Annotated[Any, Depends(convo)]
) -> dict[str, Any]:
    await console.release(bot, conv)
    return {"status": "bot"}


@router.post("/v1/console/conversations/{conversation_id}/close")
async def close(
    bot: Bot, agent: Annotated[str, Depends(agent_name)], conv: Annotated[Any, Depends(convo)]
) -> dict[str, Any]:
    await console.close(bot, conv)
    return {"status": "closed"}


@router.patch("/v1/console/conversations/{conversation_id}/tags")
async def tags(
    bot: Bot,
    body: Tags,
    agent: Annotated[str, Depends(agent_name)],
    conv: Annotated[Any, Depends(convo)],
) -> dict[str, Any]:
    return console.set_tags(bot, conv, body.items_checked())


@router.get("/v1/console/events")
async def console_events(
    bot: Bot,
    request: Request,
    agent: Annotated[str, Depends(agent_name)],
    after: After = None,
    last_event_id: str | None = Header(default=None),
) -> Any:
    start = after if after is not None else event_id(last_event_id, bot.db.last_console_seq())
    key = "console:" + bot.tenant

    async def rows_after(seen: int) -> list[tuple[int, dict[str, Any]]]:
        ev = bot.notifier.event(key)
        rows = bot.db.console_events(bot.tenant, seen)
        if not rows:
            await bot.notifier.wait(ev, min(bot.heartbeat, 1.0))
            rows = bot.db.console_events(bot.tenant, seen)
        return rows

    return sse_response(event_stream(request, start, rows_after))


@router.get("/v1/console/curated")
async def curated(bot: Bot, agent: Annotated[str, Depends(agent_name)]) -> list[dict[str, Any]]:
    return console.curated_list(bot)


@router.post("/v1/console/curated", status_code=201)
async def curated_add(
    bot: Bot, body: CuratedBody, agent: Annotated[str, Depends(agent_name)]
) -> dict[str, Any]:
    return {"id": console.curated_save(bot, body.question, body.answer, body.variants)}


@router.put("/v1/console/curated/{answer_id}")
async def curated_put(
    bot: Bot, answer_id: RowId, body: CuratedBody, agent: Annotated[str, Depends(agent_name)]
) -> dict[str, Any]:
    return {"id": console.curated_save(bot, body.question, body.answer, body.variants, answer_id)}


@router.delete("/v1/console/curated/{answer_id}")
async def curated_del(
    bot: Bot, answer_id: RowId, agent: Annotated[str, Depends(agent_name)]
) -> dict[str, Any]:
    console.curated_delete(bot, answer_id)
    return {"ok": True}


@router.get("/v1/console/review")
async def review(
    bot: Bot, agent: Annotated[str, Depends(agent_name)], status: str = Query(default="open")
) -> list[dict[str, Any]]:
    return console.review_list(bot, status)


@router.post("/v1/console/review/{review_id}/promote")
async def promote(
    bot: Bot, review_id: RowId, body: PromoteBody, agent: Annotated[str, Depends(agent_name)]
) -> dict[str, Any]:
    return {
        "curated_id": console.review_promote(
            bot, review_id, body.question, body.answer, body.variants
        )
    }


@router.get("/v1/console/export")
async def export(
    bot: Bot, agent: Annotated[str, Depends(agent_name)], format: str = Query(default="jsonl")
) -> Any:
    body, media = records.export(bot, format)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="conversations.{format}"'},
    )


@router.get("/v1/console/summary")
async def summary(bot: Bot, agent: Annotated[str, Depends(agent_name)]) -> dict[str, Any]:
    return records.summary(bot)


# --- channels ----------------------------------------------------------------------------


@router.post("/v1/channels/webhook")
async def webhook(bot: Bot, request: Request) -> dict[str, Any]:
    return await bot.webhook(
        await request.body(),
        request.headers.get("x-signature"),
        request.headers.get("x-timestamp"),
    )


@router.post("/v1/channels/feishu/events")
async def feishu(bot: Bot, request: Request) -> dict[str, Any]:
    return await bot.feishu(await request.body(), dict(request.headers))


router.include_router(media_router)


def create_bot_app(bot: SupportBot, *, heartbeat: float = 15.0) -> Any:
    """An app serving the bot (its routes, its agent, the widget and console pages) on its own:
    tests, benchmarks, a bot without other agents. `glm-agent serve` builds the same app."""
    from glm_agent.serving._app import create_app

    bot.heartbeat = heartbeat
    return create_app([bot.agent], support=bot)
