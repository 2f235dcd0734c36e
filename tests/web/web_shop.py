"""The scripted shop agent behind the browser tests: a FunctionModel that streams slowly and a
return tool that needs the customer's confirmation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from glm_agent.messages import ImagePart, Message, ToolCall, ToolMessage, UserMessage
from glm_agent.models import AgentInfo
from glm_agent.tools import tool

RETURNS: list[str] = []
"""Orders whose return the (approved) tool started."""


@tool(requires_approval=True)
def return_order(order_id: str) -> dict[str, str]:
    """Start the return of an order (the customer confirms first).

    Args:
        order_id: The order number, e.g. A-1001.
    """
    RETURNS.append(order_id)
    return {"order_id": order_id, "status": "return_requested"}


async def stream_answer(messages: list[Message], info: AgentInfo) -> AsyncIterator[str | ToolCall]:
    """Answers word by word, slowly enough that the page sees the text grow; "return A-1001"
    calls the return tool (which needs the customer's confirmation)."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        yield f"Done: {last.content}"
        return
    user = next(m for m in reversed(messages) if isinstance(m, UserMessage))
    question = user.text
    if user.media:  # a photo: say what arrived (its size, and that its bytes came with it)
        sizes = ", ".join(
            f"{p.width}x{p.height}"
            for p in user.media
            if isinstance(p, ImagePart) and p.url.startswith("data:image/")
        )
        yield f"I can see your photo ({sizes})."
        return
    if "policy" in question:
        for piece in (
            "See **our ",
            "policy** at [the help page]",
            "(https://shop.example/help)",
            " or [this](javascript:alert(1)); `code` too.",
        ):
            await asyncio.sleep(0.02)
            yield piece
        return
    if order := re.search(r"return (A-\d+)", question):
        yield ToolCall.from_args("return_order", {"order_id": order[1]})
        return
    answer = f"About “{question.strip()}”: standard shipping takes 3 to 5 business days."
    for piece in re.findall(r"\S+\s*", answer):
        await asyncio.sleep(0.04)
        yield piece
