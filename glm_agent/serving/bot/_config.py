"""`SupportConfig`: the support bot's settings (the `support.yaml` beside an agent.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ChannelsConfig",
    "CuratedConfig",
    "FeishuConfig",
    "HandoffConfig",
    "ImagesConfig",
    "RedactionConfig",
    "SupportConfig",
    "SupportLimits",
    "WebhookConfig",
]

PiiKind = Literal["id_card", "phone", "bank_card", "email"]


_ALL_KINDS: tuple[PiiKind, ...] = ("id_card", "phone", "bank_card", "email")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HandoffConfig(_Strict):
    """When the bot hands a conversation to a human."""

    request_phrases: list[str] = Field(
        default_factory=lambda: [
            "人工",
            "转人工",
            "真人",
            "人工客服",
            "human",
            "agent",
            "real person",
            "representative",
            "operator",
        ]
    )
    """Phrases by which a customer asks for a person (Latin ones match whole words only)."""
    sensitive_patterns: list[str] = Field(
        default_factory=lambda: ["投诉", "律师", "起诉", "报警", r"\blawyer\b", r"\bsue\b"]
    )
    """Regular expressions of topics the policy sends to a human at once."""
    refund_over: float | None = None
    """Removed: see the validator (money rules are tool policy rules on facts)."""
    max_failures: int = Field(default=2, ge=1)
    """Consecutive runs with an error or no answer before handing off."""
    min_retrieval_score: float | None = None
    """Dense cosine score under which a knowledge answer counts as no answer."""
    low_confidence_handoff: bool = False
    """Hand off at once on low retrieval confidence (else it counts as a failure)."""
    tool_name: str = "hand_off"
    """The tool whose call by the model hands the conversation off."""
    summary: Literal["auto", "model", "extractive"] = "auto"
    """Who writes the ticket's summary: the agent's model, or extracted sentences
    (`auto`: extractive for the offline model, else the model)."""

    @field_validator("refund_over")
    @classmethod
    def _money_rules_are_tool_rules(cls, value: float | None) -> None:
        if value is not None:
            raise ValueError(
                "handoff.refund_over read amounts out of the customer's message and is gone: "
                "put the rule on the tool in the tool registry, where it checks the order's "
                f"real amount: policy: {{facts: module:order_facts, rules: [{{if: "
                f"facts.total > {value:g}, then: review}}]}}"
            )
        return None


class CuratedConfig(_Strict):
    """Approved answers given without a model call."""

    threshold: float = Field(default=0.72, ge=0.0, le=1.0)
    """Cosine similarity (character n-gram TF-IDF) a message needs to get a curated answer."""
    file: str | None = None
    """A YAML list of {question, answer, variants} loaded into an empty curated set."""


class RedactionConfig(_Strict):
    """PII masking in stored transcripts, logs and exports."""

    kinds: list[PiiKind] = Field(default_factory=lambda: list(_ALL_KINDS))
    """Which kinds of PII are masked."""
    style: Literal["mask", "label", "partial"] = "partial"
    """`mask`: every character becomes *; `label`: [PHONE]; `partial`: keep a few edge
    characters (138****5678)."""
    fields: dict[str, list[PiiKind]] = Field(default_factory=dict)
    """Per-field overrides: `transcript`, `log`, `export` → the kinds masked there."""


_KNOWN_DEFAULTS = {"change-me", "changeme", "secret", "password", "test", "default"}


class WebhookConfig(_Strict):
    """The generic JSON webhook channel."""

    secret: str = Field(min_length=16)
    """The HMAC-SHA256 key shared with the caller (at least 16 characters; a placeholder such as
    `change-me` is refused: anyone could sign requests with it)."""

    @field_validator("secret")
    @classmethod
    def _no_default_secret(cls, value: str) -> str:
        if value.strip().lower() in _KNOWN_DEFAULTS:
            raise ValueError(f"the webhook secret {value!r} is a placeholder; set a random one")
        return value

    callback_url: str | None = None
    """Where replies (and human agents' replies) are also POSTed, signed the same way."""
    max_skew_seconds: float = 300.0
    """Requests whose X-Timestamp is further off than this are rejected."""
    trusted_identity: bool = True
    """The calling system vouches for its `customer_id`s (it signs every request): its
    conversations start with a verified customer. Set false when the ids are only the
    channel's own and customers must verify with a tool."""


class FeishuConfig(_Strict):
    """The Feishu / Lark event callback channel."""

    app_id: str = ""
    """The app's id (for the tenant access token)."""
    app_secret: str = ""
    """The app's secret."""
    verification_token: str | None = None
    """The token Feishu puts in each event (checked when set)."""
    encrypt_key: str | None = None
    """The encrypt key: bodies are AES-decrypted and signatures checked when set."""
    api_base: str = "https://open.feishu.cn"
    """The open API's base URL (`https://open.larksuite.com` for Lark)."""

    @model_validator(mode="after")
    def _authenticated(self) -> FeishuConfig:
        # Without either, anybody could post events in any Feishu user's name.
        if not (self.verification_token or self.encrypt_key):
            raise ValueError(
                "set encrypt_key (recommended: bodies encrypted and signed) or "
                "verification_token: without them anybody can post events in any user's name"
            )
        for name in ("verification_token", "encrypt_key"):
            value = getattr(self, name)
            if value is not None and value.strip().lower() in _KNOWN_DEFAULTS:
                raise ValueError(f"the Feishu {name} {value!r} is a placeholder; set the real one")
        return self


class ChannelsConfig(_Strict):
    """Channels besides the web widget."""

    webhook: WebhookConfig | None = None
    """The generic JSON webhook."""
    feishu: FeishuConfig | None = None
    """Feishu / Lark."""


class SupportLimits(_Strict):
    """How often one client address may use the customer routes (token buckets per address,
    per worker process)."""

    conversations_per_minute: float = Field(default=10, gt=0)
    """New conversations per minute."""
    messages_per_minute: float = Field(default=30, gt=0)
    """Customer messages (and feedback, handoff requests) per minute."""
    burst: int = Field(default=10, ge=1)
    """Most at once after a quiet spell."""


class ImagesConfig(_Strict):
    """Photos customers attach (the widget's camera button, image parts over the API)."""

    enabled: bool | None = None
    """Take photos; None: when the agent's model reads images (a vision GLM)."""
    max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=32 * 1024 * 1024)
    """Largest photo, in bytes (the widget shrinks larger ones before sending). A message's
    photos also count against the server's `max_body_bytes` (4 MB), base64 adding a third."""
    max_per_message: int = Field(default=3, ge=1, le=16)
    """Most photos in one message."""


class SupportConfig(_Strict):
    """The customer-service bot's settings."""

    tenant: str = "default"
    """The tenant all of this bot's conversations, tickets and answers belong to."""
    display_name: str | dict[str, str] = "Support"
    """The name customers see (the widget's title), one or by locale: `{zh: 竹巷生活, en: ...}`."""
    database: str | None = None
    """The bot's SQLite database (default `.glm-agent/support.db` beside the config)."""
    greeting: dict[str, str] = Field(
        default_factory=lambda: {
            "zh": "您好！我是智能客服，可以帮您查询订单、退换货和解答常见问题。",
            "en": "Hello! I can look up orders, handle returns and exchanges, and answer "
            "questions.",
        }
    )
    """The first message, by locale."""
    knowledge_sources: list[str] = Field(default_factory=list)
    """Folders or files ingested into the agent's knowledge base at start (incremental)."""
    confirm_words: list[str] = Field(
        default_factory=lambda: ["yes", "y", "confirm", "ok", "确认", "是", "是的", "好的", "对"]
    )
    """Replies that confirm a pending state-changing action; anything else declines it."""
    decline_words: list[str] = Field(
        default_factory=lambda: ["no", "n", "cancel", "不", "不要", "取消", "算了", "不用了"]
    )
    """Replies that only decline a pending action; any other reply declines it and is then
    answered as a new message."""
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    """Handoff triggers."""
    curated: CuratedConfig = Field(default_factory=CuratedConfig)
    """Curated answers."""
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    """PII masking."""
    console_accounts: dict[str, str] = Field(default_factory=dict)
    """Human agents: username → password hash (`scrypt$...` from `hash_password`, or
    `sha256$<hex>`)."""
    token_ttl_seconds: float = 12 * 3600
    """How long a console login lasts."""
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    """Webhook and IM channels."""
    limits: SupportLimits = Field(default_factory=SupportLimits)
    """Per-address rate limits of the customer routes."""
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    """Photos from customers: whether they are taken, how large, how many."""
    retention_days: float | None = Field(default=None, gt=0)
    """Conversations without activity for this many days are deleted, with their events,
    tickets, review items and agent session (None: kept until deleted). Expired console tokens
    and channel de-duplication records older than a day are always removed."""
    demo_reset: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    """`module:function` (found beside the agent.yaml) that restores a demo's own data, called
    by `glm-agent support reset-demo` before it clears the bot's conversations."""

    def database_path(self, base_dir: Path) -> Path:
        """The bot database's path, relative paths taken from `base_dir`."""
        raw = self.database or ".glm-agent/support.db"
        if raw == ":memory:":
            return Path(raw)
        path = Path(raw) if Path(raw).is_absolute() else base_dir / raw
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
