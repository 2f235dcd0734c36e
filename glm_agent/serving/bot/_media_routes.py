"""Photos in the support bot's HTTP API: what a customer's message may carry, and the stored
photos read back by the customer who sent them and by the human agents' console.

Photos are served from the conversation's session store by their sha256 (`media:<sha256>` in
messages), with the type read from their own bytes (PNG, JPEG, GIF or WebP only) and headers
that keep a browser from treating them as anything else.
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from glm_agent.exceptions import InvalidRequestError, NotFoundError
from glm_agent.messages import ImagePart, ImageURL, TextPart, UserMessage
from glm_agent.serving._deps import JsonRoute
from glm_agent.serving.bot._route_deps import Bot, agent_name, convo, customer

__all__ = ["CustomerMessage", "router"]

router = APIRouter(route_class=JsonRoute)
_MEDIA_ID = re.compile(r"^[0-9a-f]{64}$")


class CustomerMessage(BaseModel):
    """POST /v1/support/conversations/{id}/messages: text, photos, or both."""

    text: str = Field(default="", max_length=4000)
    """What the customer wrote."""
    images: list[Annotated[str, Field(max_length=45_000_000)]] = Field(
        default_factory=list, max_length=16
    )
    """Photos as base64 `data:image/<type>;base64,...` URLs (the bot checks their size, type
    and number)."""

    def message(self) -> UserMessage:
        """The customer's message."""
        if not self.images:
            return UserMessage(content=self.text)
        try:
            photos = [ImagePart(image_url=ImageURL(url=u)) for u in self.images]
        except ValueError:
            raise InvalidRequestError(
                "images must be data:image/<type>;base64,... URLs", param="images"
            ) from None
        if any(not p.url.startswith("data:") for p in photos):
            raise InvalidRequestError("images must be uploaded as data: URLs", param="images")
        text = [TextPart(text=self.text)] if self.text else []
        return UserMessage(content=(*text, *photos))


async def _photo(bot: Any, conversation_id: str, media_id: str) -> Response:
    if not _MEDIA_ID.match(media_id):
        raise NotFoundError("no such photo", code="media_not_found")
    found = await bot.store.get_media(bot.tenant, conversation_id, media_id)
    if found is None:
        raise NotFoundError("no such photo (it may have expired)", code="media_not_found")
    mime, data = found
    headers = {
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": "inline",
    }
    return Response(data, media_type=mime, headers=headers)


@router.get("/v1/support/conversations/{conversation_id}/media/{media_id}")
async def customer_photo(
    bot: Bot, media_id: str, conv: Annotated[Any, Depends(customer)]
) -> Response:
    """A photo of the conversation, for the customer who holds its token."""
    return await _photo(bot, conv.id, media_id)


@router.get("/v1/console/conversations/{conversation_id}/media/{media_id}")
async def console_photo(
    bot: Bot,
    media_id: str,
    agent: Annotated[str, Depends(agent_name)],
    conv: Annotated[Any, Depends(convo)],
) -> Response:
    """A photo of the conversation, for a logged-in human agent."""
    return await _photo(bot, conv.id, media_id)
