"""What human agents do: log in, see the queue, take / reply / release / close conversations,
tag them, curate answers and work the review queue. Functions over a `BotCore`."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from glm_agent.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from glm_agent.messages import AssistantMessage
from glm_agent.serving.bot._db import Conversation
from glm_agent.serving.bot._engine import HUMAN_STATES, BotCore, hash_token
from glm_agent.serving.bot.accounts import DUMMY_HASH, verify_password

__all__ = [
    "add_feedback",
    "agent_for_token",
    "close",
    "conversation_detail",
    "curated_delete",
    "curated_list",
    "curated_save",
    "login",
    "logout",
    "queue",
    "release",
    "reply",
    "review_list",
    "review_promote",
    "set_tags",
    "take",
    "transcript",
]


async def login(bot: BotCore, username: str, password: str, client: str = "") -> str:
    """A bearer token for a console account.

    Hashing runs in a worker thread (scrypt takes tens of milliseconds: on the event loop it
    would stall every other request); unknown users are checked against a dummy hash of the
    same cost, so the answer takes as long either way; failures are throttled per username and
    per client address.

    Raises:
        TooManyRequestsError: Too many failed logins lately (retry after the given seconds).
        AuthenticationError: Wrong username or password.
    """
    bot.login_throttle.check(username, client)
    stored = bot.config.console_accounts.get(username)
    ok = await asyncio.to_thread(verify_password, password, stored or DUMMY_HASH)
    if not ok or stored is None:
        bot.login_throttle.failed(username, client)
        raise AuthenticationError("wrong username or password", code="unauthorized")
    bot.login_throttle.succeeded(username, client)
    token = secrets.token_urlsafe(32)
    bot.db.add_token(
        hash_token(token), bot.tenant, username, time.time() + bot.config.token_ttl_seconds
    )
    return token


def logout(bot: BotCore, token: str | None) -> bool:
    """Revoke a console token on the server (a copy of it no longer works); False when it was
    not a live token."""
    return bool(token) and bot.db.delete_token(hash_token(token or ""))


def agent_for_token(bot: BotCore, token: str | None) -> str:
    """The username a console token belongs to (401 when missing, unknown or expired)."""
    if token:
        user = bot.db.token_user(hash_token(token), bot.tenant)
        if user is not None:
            return user
    raise AuthenticationError("log in first: POST /v1/console/login", code="unauthorized")


def transcript(bot: BotCore, conv: Conversation) -> list[dict[str, Any]]:
    """The conversation's messages as the API shows them."""
    out = []
    for seq, e in bot.db.events(bot.tenant, conv.id, 0, "message"):
        item = {k: e.get(k) for k in ("role", "text", "source", "ts")}
        item["id"] = seq
        for extra in ("citations", "agent", "images"):
            if extra in e:
                item[extra] = e[extra]
        out.append(item)
    return out


def _ticket(bot: BotCore, conversation_id: str) -> dict[str, Any] | None:
    return bot.db.latest_ticket(bot.tenant, conversation_id)


_NOTES = ("tool_outcome", "run_failed", "verified")
"""Console events shown with a conversation: what failed and why, who was verified."""


def conversation_detail(bot: BotCore, conv: Conversation) -> dict[str, Any]:
    """Transcript, status, tags and ticket of a conversation (for the console)."""
    return {
        "conversation_id": conv.id,
        "status": conv.status,
        "channel": conv.channel,
        "customer_id": conv.customer_id,
        "assigned_to": conv.assigned_to,
        "tags": conv.tags,
        "created_at": conv.created_at,
        "verified_customer": conv.verified_customer,
        "messages": transcript(bot, conv),
        "ticket": _ticket(bot, conv.id),
        "notes": [
            e
            for _, e in bot.db.console_events(bot.tenant, 0)
            if e.get("conversation_id") == conv.id and e.get("type") in _NOTES
        ],
    }


def _preview(event: dict[str, Any] | None) -> str | None:
    """A customer message as the queue shows it (`[photo]` marks the photos it carried)."""
    if event is None:
        return None
    photos = len(event.get("images") or [])
    marks = " ".join(["[photo]"] * photos)
    return " ".join(x for x in (event.get("text") or "", marks) if x)


def queue(bot: BotCore) -> list[dict[str, Any]]:
    """Conversations with humans: waiting ones first (oldest first), then those being served."""
    now = time.time()
    items = []
    for status in HUMAN_STATES:
        convs = bot.db.conversations(bot.tenant, status)
        convs.sort(key=lambda c: c.waiting_since or c.updated_at)
        for c in convs:
            msgs = bot.db.events(bot.tenant, c.id, 0, "message")
            last = next((e for _, e in reversed(msgs) if e["role"] == "customer"), None)
            items.append(
                {
                    "conversation_id": c.id,
                    "status": c.status,
                    "assigned_to": c.assigned_to,
                    "waiting_seconds": round(now - (c.waiting_since or now), 1),
                    "ticket": _ticket(bot, c.id),
                    "last_message": _preview(last),
                    "channel": c.channel,
                }
            )
    return items


async def take(bot: BotCore, conv: Conversation, agent: str) -> None:
    """Assign a waiting (or bot) conversation to `agent`."""
    if conv.status == "closed":
        raise ConflictError("the conversation is closed", code="conversation_closed")
    if conv.status == "with_human" and conv.assigned_to not in (None, agent):
        raise ConflictError(f"already taken by {conv.assigned_to}", code="already_taken")
    bot.db.update(bot.tenant, conv.id, assigned_to=agent)
    if conv.status != "with_human":
        await bot.set_status(conv, "with_human", agent=agent)
    await bot.publish(
        conv,
        bot._message(
            "system",
            bot._t(
                conv, f"人工客服 {agent} 为您服务。", f"{agent} from our support team has joined."
            ),
            "system",
            agent=agent,
        ),
        deliver=True,
    )
    bot.console_event("taken", conv, agent=agent)


async def reply(bot: BotCore, conv: Conversation, agent: str, text: str) -> int:
    """A human agent's message, delivered to the customer's streams and channel."""
    if not text.strip():
        raise InvalidRequestError("the reply text is empty", code="empty_message", param="text")
    if conv.status != "with_human" or conv.assigned_to != agent:
        await take(bot, conv, agent)
    pairs = bot.transcript_pairs(conv)
    question = next((t for r, t in reversed(pairs) if r == "customer"), "")
    seq = await bot.publish(conv, bot._message("human", text, "human", agent=agent), deliver=True)
    await bot.memory.commit(conv.id, [AssistantMessage(content=text)])
    if question:
        bot.db.add_review(bot.tenant, conv.id, seq, "human_answer", question, bot._r(text))
    return seq


async def release(bot: BotCore, conv: Conversation) -> None:
    """Give the conversation back to the bot."""
    await bot.set_status(conv, "bot")
    await bot.publish(
        conv,
        bot._message(
            "system", bot._t(conv, "已转回智能客服。", "You are back with the assistant."), "system"
        ),
        deliver=True,
    )
    bot.console_event("released", conv)


async def close(bot: BotCore, conv: Conversation) -> None:
    """Close the conversation (a later customer message reopens it with the bot)."""
    tags = conv.tags
    tags.setdefault("resolution", "human" if tags.get("handed_off") else "bot")
    bot.db.update(bot.tenant, conv.id, tags=tags)
    bot.db.close_tickets(bot.tenant, conv.id)
    await bot.set_status(conv, "closed")
    bot.console_event("closed", conv)


_BOT_TAGS = ("chat_id", "handed_off", "handoff_trigger", "ratings")
"""Tags the bot keeps itself (where replies go, what happened, the customer's thumbs): summary,
export, feedback and delivery read them, so a human agent's edit cannot set them."""


def set_tags(bot: BotCore, conv: Conversation, tags: dict[str, Any]) -> dict[str, Any]:
    """Merge tags (intent, resolution, csat 1-5, ...) into the conversation's."""
    for key in _BOT_TAGS:
        if key in tags:
            raise InvalidRequestError(
                f"the tag {key!r} is kept by the bot; tags it keeps: {', '.join(_BOT_TAGS)}",
                param=key,
            )
    csat = tags.get("csat")
    if csat is not None and not (isinstance(csat, int | float) and 1 <= csat <= 5):
        raise InvalidRequestError(f"csat must be a number from 1 to 5, got {csat!r}", param="csat")
    merged = {**conv.tags, **{k: v for k, v in tags.items() if v is not None}}
    bot.db.update(bot.tenant, conv.id, tags=merged)
    return merged


def add_feedback(
    bot: BotCore, conv: Conversation, message_id: int, rating: str, comment: str | None
) -> None:
    """A customer's thumbs up / down on a bot message; both go to the review queue."""
    if rating not in ("up", "down"):
        raise InvalidRequestError(f"rating must be 'up' or 'down', got {rating!r}", param="rating")
    events = dict(bot.db.events(bot.tenant, conv.id, 0, "message"))
    msg = events.get(message_id)
    if msg is None or msg["role"] not in ("bot", "human"):
        raise NotFoundError(
            f"no bot message {message_id} in this conversation", code="message_not_found"
        )
    question = next(
        (
            e["text"]
            for s, e in sorted(events.items(), reverse=True)
            if s < message_id and e["role"] == "customer"
        ),
        "",
    )
    bot.db.add_review(
        bot.tenant,
        conv.id,
        message_id,
        f"thumbs_{rating}",
        question,
        msg["text"],
        bot._r(comment or ""),
    )
    ratings = dict(conv.tags.get("ratings") or {})
    ratings[str(message_id)] = rating
    bot.db.update(bot.tenant, conv.id, tags={**conv.tags, "ratings": ratings})


def curated_list(bot: BotCore) -> list[dict[str, Any]]:
    """Every curated answer of the tenant."""
    return bot.db.curated(bot.tenant)


def curated_save(
    bot: BotCore, question: str, answer: str, variants: list[str], answer_id: int | None = None
) -> int:
    """Add (or, with `answer_id`, replace) a curated answer; returns its id."""
    if not question.strip() or not answer.strip():
        raise InvalidRequestError("question and answer must not be empty", param="question")
    if answer_id is None:
        answer_id = bot.db.add_curated(bot.tenant, question, answer, variants)
    elif not bot.db.update_curated(bot.tenant, answer_id, question, answer, variants):
        raise NotFoundError(f"no curated answer {answer_id}", code="curated_not_found")
    bot.reload_curated()
    return answer_id


def curated_delete(bot: BotCore, answer_id: int) -> None:
    """Remove a curated answer."""
    if not bot.db.delete_curated(bot.tenant, answer_id):
        raise NotFoundError(f"no curated answer {answer_id}", code="curated_not_found")
    bot.reload_curated()


def review_list(bot: BotCore, status: str = "open") -> list[dict[str, Any]]:
    """Review items (thumbs up / down, human answers), newest first."""
    return bot.db.reviews(bot.tenant, status)


def review_promote(
    bot: BotCore, review_id: int, question: str | None, answer: str | None, variants: list[str]
) -> int:
    """Make a review item a curated answer (edited by the reviewer); returns the answer's id."""
    item = bot.db.review(bot.tenant, review_id)
    if item is None:
        raise NotFoundError(f"no review item {review_id}", code="review_not_found")
    new_id = curated_save(bot, question or item["question"], answer or item["answer"], variants)
    bot.db.set_review_status(bot.tenant, review_id, "promoted")
    return new_id
