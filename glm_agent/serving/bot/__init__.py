"""The customer-service bot: conversations over a web widget, a signed JSON webhook and
Feishu / Lark; handoff to human agents with tickets; curated answers; PII redaction; records.

```python
from glm_agent.serving import create_app
from glm_agent.serving.bot import SupportBot

bot = SupportBot.from_yaml("examples/customer-service/agent.yaml")   # + support.yaml beside it
app = create_app([bot.agent], support=bot)      # every door of the agent goes through the bot
```

FastAPI is imported only when an app is built; the cryptography package only to decrypt Feishu
events.
"""

from __future__ import annotations

from typing import Any

from glm_agent.serving.bot._bot import SupportBot, find_support_config
from glm_agent.serving.bot._config import (
    ChannelsConfig,
    CuratedConfig,
    FeishuConfig,
    HandoffConfig,
    ImagesConfig,
    RedactionConfig,
    SupportConfig,
    WebhookConfig,
)
from glm_agent.serving.bot.accounts import hash_password, verify_password
from glm_agent.serving.bot.channels import (
    FeishuSender,
    feishu_decrypt,
    feishu_encrypt,
    feishu_signature,
    sign_webhook,
    verify_webhook,
)
from glm_agent.serving.bot.curated import CuratedAnswer, CuratedMatcher, normalize_text
from glm_agent.serving.bot.handoff import HandoffTrigger, detect_handoff, extractive_summary
from glm_agent.serving.bot.redaction import Redactor, id_card_valid, luhn_valid

__all__ = [
    "ChannelsConfig",
    "CuratedAnswer",
    "CuratedConfig",
    "CuratedMatcher",
    "FeishuConfig",
    "FeishuSender",
    "HandoffConfig",
    "HandoffTrigger",
    "ImagesConfig",
    "RedactionConfig",
    "Redactor",
    "SupportBot",
    "SupportConfig",
    "WebhookConfig",
    "create_bot_app",
    "detect_handoff",
    "extractive_summary",
    "feishu_decrypt",
    "feishu_encrypt",
    "feishu_signature",
    "find_support_config",
    "hash_password",
    "id_card_valid",
    "luhn_valid",
    "normalize_text",
    "sign_webhook",
    "verify_password",
    "verify_webhook",
]


def create_bot_app(bot: SupportBot, *, heartbeat: float = 15.0) -> Any:
    """An app serving the bot on its own (its routes, its agent, the widget and console)."""
    from glm_agent.serving.bot._routes import create_bot_app as build

    return build(bot, heartbeat=heartbeat)
