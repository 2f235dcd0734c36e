"""`SupportBot`: the customer-service bot over an `Agent`, with its channels."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from glm_agent.exceptions import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
)
from glm_agent.memory import SessionStore
from glm_agent.serving._json import loads_json
from glm_agent.serving.bot._config import SupportConfig
from glm_agent.serving.bot._db import Conversation
from glm_agent.serving.bot._engine import BotCore
from glm_agent.serving.bot.channels import (
    FeishuSender,
    WebhookCallback,
    feishu_decrypt,
    feishu_signature,
    verify_webhook,
)

__all__ = ["SupportBot", "find_support_config"]

log = logging.getLogger("glm_agent.support")

SUPPORT_FILE = "support.yaml"
_MAX_ID = 200
"""Longest channel id (event, customer, chat) accepted from a channel."""
_MAX_TEXT = 4000
"""Longest customer message accepted from a channel (the widget's limit too)."""


def find_support_config(agent_yaml: str | Path) -> Path | None:
    """The `support.yaml` beside an agent.yaml, if any (the bot is served when there is one)."""
    candidate = Path(agent_yaml).parent / SUPPORT_FILE
    return candidate if candidate.is_file() else None


class SupportBot(BotCore):
    """A customer-service bot: conversations over the web widget, a JSON webhook and Feishu,
    handoff to human agents, curated answers, redaction and records.

    Args:
        agent: The `Agent` answering customers (its model, tools, knowledge and memory).
        config: The bot's settings (default: `SupportConfig()`).
        base_dir: Folder relative paths of the config are resolved from.
        store: The session store for transcripts (default: the agent's memory, else SQLite
            beside the bot database).
        feishu_sender: Sends Feishu messages (default: a `FeishuSender` for the configured app).
    """

    def __init__(
        self,
        agent: Any,
        config: SupportConfig | None = None,
        *,
        base_dir: str | Path = ".",
        store: SessionStore | None = None,
        feishu_sender: FeishuSender | None = None,
    ) -> None:
        super().__init__(agent, config, base_dir=base_dir, store=store)
        channels = self.config.channels
        if channels.feishu is not None:
            f = channels.feishu
            sender = feishu_sender or FeishuSender(f.app_id, f.app_secret, f.api_base)

            async def to_feishu(conv: Conversation, text: str) -> None:
                chat = conv.tags.get("chat_id")
                if chat:
                    await sender.send_text(str(chat), text)

            self.deliverers["feishu"] = to_feishu
        if channels.webhook is not None and channels.webhook.callback_url:
            callback = WebhookCallback(channels.webhook.callback_url, channels.webhook.secret)

            async def to_callback(conv: Conversation, text: str) -> None:
                await callback.send(conv.id, conv.customer_id, text)

            self.deliverers["webhook"] = to_callback

    @classmethod
    def from_yaml(
        cls, agent_yaml: str | Path, *, agent: Any = None, prepare: bool = True
    ) -> SupportBot:
        """The bot for an agent.yaml and the `support.yaml` beside it (defaults if absent).

        Args:
            agent_yaml: The agent.yaml.
            agent: The agent already built from it (the server's), else it is loaded.
            prepare: Ingest the knowledge sources and load curated answers now.
        """
        from glm_agent._yaml_source import read_yaml
        from glm_agent.agent_config import load_agent

        path = Path(agent_yaml)
        support = find_support_config(path)
        config = SupportConfig()
        if support is not None:
            data = read_yaml(support).substitute_env().mapping()
            try:
                config = SupportConfig.model_validate(data)
            except ValidationError as e:
                err = e.errors()[0]
                raise ConfigError(
                    err["msg"], path=str(support), key=".".join(map(str, err["loc"])) or None
                ) from None
        bot = cls(agent if agent is not None else load_agent(path), config, base_dir=path.parent)
        if prepare:
            bot.prepare()
        return bot

    def prepare(self) -> None:
        """Ingest the configured knowledge sources (incremental) and, into an empty curated set,
        the curated-answers file."""
        kb = getattr(self.agent, "knowledge", None)
        if kb is not None and hasattr(kb, "ingest"):
            for source in self.config.knowledge_sources:
                report = kb.ingest(self.base_dir / source)
                log.info("knowledge %s: %s", source, report.summary())
        file = self.config.curated.file
        if file and not self.db.has_curated(self.tenant):
            from glm_agent._yaml_source import read_yaml
            from glm_agent.serving.bot._console import curated_save

            data = read_yaml(self.base_dir / file).substitute_env().mapping()
            for item in data.get("answers") or []:
                curated_save(
                    self, item["question"], item["answer"], list(item.get("variants") or [])
                )

    # --- the generic webhook -----------------------------------------------------------------

    async def webhook(
        self, body: bytes, signature: str | None, timestamp: str | None
    ) -> dict[str, Any]:
        """Handle a signed webhook request; retries of an event id get the first reply."""
        cfg = self.config.channels.webhook
        if cfg is None:
            raise NotFoundError("the webhook channel is not configured", code="not_found")
        problem = verify_webhook(
            cfg.secret, body, signature, timestamp, max_skew=cfg.max_skew_seconds
        )
        if problem is not None:
            raise AuthenticationError(problem, code="bad_signature")
        try:
            payload = loads_json(body)
            event_id, text = str(payload["event_id"]), str(payload["text"])
        except (ValueError, KeyError, TypeError, RecursionError):
            raise InvalidRequestError("the body must be JSON with event_id and text") from None
        for name, value in (
            ("event_id", event_id),
            ("customer_id", payload.get("customer_id")),
            ("conversation_id", payload.get("conversation_id")),
        ):
            if value is not None and len(str(value)) > _MAX_ID:
                raise InvalidRequestError(f"{name} is longer than {_MAX_ID}", param=name)
        if len(text) > _MAX_TEXT:
            raise InvalidRequestError(f"text is longer than {_MAX_TEXT}", param="text")
        async with self._lock("webhook:" + event_id):
            stored = self.db.dedupe_response(self.tenant, "webhook", event_id)
            if stored is not None:
                return dict(json.loads(stored), duplicate=True)
            if not self.db.claim_event(self.tenant, "webhook", event_id):
                # Another worker is handling this very event right now.
                return {"duplicate": True, "status": "processing"}
            conv = await self._channel_conversation(
                "webhook",
                payload.get("conversation_id"),
                payload.get("customer_id"),
                verified=cfg.trusted_identity,
            )
            replies: list[dict[str, Any]] = []

            async def collect(event: dict[str, Any]) -> None:
                if event["type"] == "message" and event["role"] != "customer":
                    replies.append({k: event.get(k) for k in ("id", "role", "text", "source")})

            await self.handle(conv.id, text, collect)
            status = self.conversation(conv.id).status
            response = {"conversation_id": conv.id, "status": status, "replies": replies}
            self.db.set_event_response(
                self.tenant, "webhook", event_id, json.dumps(response, ensure_ascii=False)
            )
            return response

    async def _channel_conversation(
        self,
        channel: str,
        conversation_id: Any,
        customer_id: Any,
        *,
        verified: bool = False,
        **tags: Any,
    ) -> Conversation:
        """The channel customer's open conversation, or a new one.

        Only the channel itself (a signed request) reaches a channel conversation: a
        conversation id names one of this customer's own conversations on this channel.
        """
        if customer_id is None or not str(customer_id).strip():
            raise InvalidRequestError("the event names no customer", param="customer_id")
        customer = str(customer_id)
        if conversation_id:
            conv = self.db.conversation(self.tenant, str(conversation_id))
            if conv is None or conv.channel != channel or conv.customer_id != customer:
                raise NotFoundError(
                    f"no {channel} conversation {conversation_id!r} of this customer",
                    code="conversation_not_found",
                )
            return conv
        conv_or_none = self.db.find_open(self.tenant, channel, customer)
        if conv_or_none is None:
            conv_or_none, _, _ = await self.create_conversation(
                channel, customer, None, verified=verified
            )
        if tags:
            conv_or_none.tags.update(tags)
            self.db.update(self.tenant, conv_or_none.id, tags=conv_or_none.tags)
        return conv_or_none

    # --- Feishu / Lark -----------------------------------------------------------------------

    async def feishu(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """Handle a Feishu event callback; replies go out through the Feishu sender."""
        cfg = self.config.channels.feishu
        if cfg is None:
            raise NotFoundError("the Feishu channel is not configured", code="not_found")
        signature = headers.get("x-lark-signature")
        if cfg.encrypt_key and signature is not None:
            want = feishu_signature(
                headers.get("x-lark-request-timestamp", ""),
                headers.get("x-lark-request-nonce", ""),
                cfg.encrypt_key,
                body,
            )
            if want != signature:
                raise AuthenticationError("X-Lark-Signature does not match", code="bad_signature")
        data = _feishu_body(body, cfg.encrypt_key)
        token = data.get("token") or (data.get("header") or {}).get("token")
        if cfg.verification_token and token != cfg.verification_token:
            raise AuthenticationError("wrong verification token", code="bad_token")
        if data.get("type") == "url_verification":
            challenge = data.get("challenge")
            if not isinstance(challenge, str) or len(challenge) > _MAX_ID:
                raise InvalidRequestError("the challenge is not a string", code="bad_event")
            return {"challenge": challenge}
        if cfg.encrypt_key and signature is None:
            raise AuthenticationError("missing X-Lark-Signature", code="bad_signature")
        header = data.get("header") or {}
        event_id = header.get("event_id") or data.get("uuid") or ""
        if not isinstance(event_id, str) or len(event_id) > _MAX_ID:
            raise InvalidRequestError("the event id is not an id", code="bad_event")
        if event_id and not self.db.claim_event(self.tenant, "feishu", event_id):
            return {"duplicate": True}
        if header.get("event_type") != "im.message.receive_v1":
            return {}
        event = data.get("event") or {}
        message = event.get("message") or {}
        if message.get("message_type") != "text":
            return {}
        try:
            content = loads_json(message.get("content") or "{}")
            text = str(content.get("text", ""))[:_MAX_TEXT] if isinstance(content, dict) else ""
        except (ValueError, TypeError, RecursionError):
            raise InvalidRequestError("the message content is not JSON", code="bad_event") from None
        sender_ids = (event.get("sender") or {}).get("sender_id") or {}
        sender = sender_ids.get("open_id") if isinstance(sender_ids, dict) else None
        chat = message.get("chat_id")
        for name, value in (("sender id", sender), ("chat id", chat)):
            if value is not None and (not isinstance(value, str) or len(value) > _MAX_ID):
                raise InvalidRequestError(f"the {name} is not an id", code="bad_event")
        if not text.strip():
            return {}  # nothing to answer (an image's caption, an empty message)
        conv = await self._channel_conversation("feishu", None, sender or chat, chat_id=chat)
        # Feishu wants an answer within 3 s and retries otherwise: reply out of band.
        task = asyncio.create_task(self.handle(conv.id, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {}

    def close(self) -> None:
        """Close the bot's database (the agent and its session store are the caller's)."""
        self.db.close()

    async def drain(self) -> None:
        """Wait for background message handling (Feishu) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _feishu_body(body: bytes, encrypt_key: str | None) -> dict[str, Any]:
    """A Feishu event body as a JSON object (decrypted when it is encrypted).

    Raises:
        InvalidRequestError: Anything else: not JSON (or not Unicode text), too deep, not an
            object, a bad `encrypt`, a header, event, message or sender that is not an object.
    """
    not_event = InvalidRequestError("the body is not a Feishu event", code="bad_event")
    try:
        data = loads_json(body)
        if isinstance(data, dict) and "encrypt" in data:
            if not encrypt_key:
                raise InvalidRequestError("an encrypted event but no encrypt_key is configured")
            if not isinstance(data["encrypt"], str):
                raise not_event
            data = loads_json(feishu_decrypt(encrypt_key, data["encrypt"]))
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError):
        raise not_event from None
    if not isinstance(data, dict):
        raise not_event
    # What the handler reads fields of must be an object (or absent).
    objects = [data.get("header"), data.get("event")]
    if isinstance(objects[1], dict):
        objects += [objects[1].get("message"), objects[1].get("sender")]
    if any(o is not None and not isinstance(o, dict) for o in objects):
        raise not_event
    return data
