"""`POST /v1/chat/completions` for the support agent: the same support pipeline as the widget.

The server holds the conversation: the session (`X-Session-Id`, else OpenAI's `user`) names it,
and only the last user message of the request is taken (a client's copy of the history, and any
tool calls in it, are never replayed); it may carry photos as `image_url` parts with base64
`data:` URLs, which go through the same checks and storage as the widget's. Each reply is the
bot's messages joined, in the customer's language. What the pipeline did is in the message's
`glm_agent` field:

```json
{"role": "assistant", "content": "请确认：取消订单 SO10001。回复“确认”继续……",
 "glm_agent": {"conversation_id": "c_…", "status": "bot",
               "pending_confirmation": {"actions": [{"id": "call_…", "tool": "cancel_order"}],
                                        "confirm_words": ["确认", "yes", …],
                                        "decline_words": ["取消", "no", …]},
               "handed_off": false, "sources": ["curated"]}}
```

A pending confirmation is settled by the next user message ("确认" / "yes" / "取消" / "no"),
streamed or not. Streamed, the text arrives as content deltas and the `glm_agent` object with the
last chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from glm_agent.exceptions import InvalidRequestError
from glm_agent.messages import Usage, UserMessage, messages_from_openai
from glm_agent.serving._config import ApiKey
from glm_agent.serving._schema import ChatCompletionRequest
from glm_agent.serving._state import ServerState, error_event, guarded_stream, sse

__all__ = ["support_completion"]

_SEPARATOR = "\n\n"


def _last_user_message(req: ChatCompletionRequest) -> UserMessage:
    try:
        msgs = messages_from_openai([m.model_dump(exclude_none=True) for m in req.messages])
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidRequestError(f"bad messages: {e}", param="messages") from None
    last = msgs[-1] if msgs else None
    if not isinstance(last, UserMessage) or not (last.text.strip() or last.media):
        raise InvalidRequestError(
            "the last message must be the customer's (role user) with text or images",
            param="messages",
        )
    return last


async def _conversation(
    bot: Any, key: ApiKey, session: str | None, customer: str | None
) -> tuple[Any, str]:
    """The API conversation of (key, session), created on first use; its session id."""
    vouched = customer is not None and key.allows("identify")
    if session is None:
        conv, _, _ = await bot.create_conversation(
            "api", f"{key.label}:{customer or ''}", None, verified=False
        )
        session = conv.id
    else:
        conv = bot.db.find_open(bot.tenant, "api", f"{key.label}:{session}")
        if conv is None:
            conv, _, _ = await bot.create_conversation("api", f"{key.label}:{session}", None)
    if vouched and conv.verified_customer != customer:
        bot.verify(conv, customer, "channel:api")
    return conv, session


def _extension(bot: Any, conv_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    conv = bot.conversation(conv_id)
    confirm = next((e["confirm"] for e in events if e.get("confirm")), None)
    return {
        "conversation_id": conv.id,
        "status": conv.status,
        "pending_confirmation": None
        if confirm is None or not conv.pending
        else {
            "actions": confirm,
            "confirm_words": list(bot.config.confirm_words),
            "decline_words": list(bot.config.decline_words),
        },
        "handed_off": conv.status in ("waiting_human", "with_human"),
        "sources": [e["source"] for e in events if e.get("type") == "message"],
    }


def _replies(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("type") == "message" and e.get("role") != "customer"]


async def support_completion(
    state: ServerState,
    bot: Any,
    req: ChatCompletionRequest,
    key: ApiKey,
    session_header: str | None,
    customer_header: str | None,
) -> dict[str, Any] | AsyncIterator[str]:
    """The support bot's answer to the request's last user message (see the module docstring)."""
    from glm_agent.serving._chat import Chunks

    user = _last_user_message(req)
    conv, session = await _conversation(bot, key, session_header or req.user, customer_header)
    chunks = Chunks(req.model)
    if not req.stream:
        events: list[dict[str, Any]] = []

        async def collect(event: dict[str, Any]) -> None:
            events.append(event)

        timeout = state.agents[bot.agent.name].run_timeout
        await asyncio.wait_for(bot.handle(conv.id, user, collect), timeout)
        content = _SEPARATOR.join(e["text"] for e in _replies(events))
        message = {
            "role": "assistant",
            "content": content,
            "glm_agent": _extension(bot, conv.id, events),
        }
        out = chunks.completion(message, "stop", _usage(events))
        out["session_id"] = session
        return out
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def stream() -> AsyncIterator[str]:
        yield chunks.delta({"role": "assistant", "content": ""})
        seen: list[dict[str, Any]] = []
        streamed = ""  # model text already sent as deltas for the message being written
        first = True
        async for event in bot.send(conv, user):
            seen.append(event)
            kind = event.get("type")
            if kind == "delta":
                piece = event["text"] if streamed or first else _SEPARATOR + event["text"]
                streamed += event["text"]
                first = False
                yield chunks.delta({"content": piece})
            elif kind == "message" and event.get("role") != "customer":
                if streamed and event["text"].startswith(streamed[:20]):
                    rest = event["text"][len(streamed) :]
                    if rest:
                        yield chunks.delta({"content": rest})
                else:
                    yield chunks.delta({"content": ("" if first else _SEPARATOR) + event["text"]})
                streamed, first = "", False
            elif kind == "error":
                raise InvalidRequestError(event.get("message") or "the message failed")
        yield chunks.delta({"glm_agent": _extension(bot, conv.id, seen)}, "stop")
        if include_usage:
            yield chunks.usage(_usage(seen))
        yield sse("[DONE]")

    return guarded_stream(state, stream(), on_error=error_event, closing=[sse("[DONE]")])


def _usage(events: list[dict[str, Any]]) -> Usage:
    total = Usage()
    for e in events:
        if e.get("type") == "usage":
            total = total + Usage(
                input_tokens=e.get("input_tokens", 0),
                output_tokens=e.get("output_tokens", 0),
                requests=e.get("requests", 0),
            )
    return total
