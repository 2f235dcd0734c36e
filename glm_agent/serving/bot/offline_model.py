"""The offline model: a scripted stand-in for an LLM so the support example runs with no weights.

It is not a language model. Each turn it follows fixed rules, in the customer's language (the
language of their last message, or of the conversation when that message has none; one language
per reply):

- tool results arrived → it reports each in the tool's own templates (`done`, `refused.<code>`,
  `declined`...; `glm_agent.serving.bot.replies`); after a successful verification it goes back
  to what the customer asked before being asked to verify;
- greetings and thanks → a short reply (they never count as an unanswered message);
- the message carries an order number and a mobile number or e-mail → `verify_customer`;
- an intent about an order (cancel, return, exchange, new address, where is it) → that tool,
  for the order number in the message or, failing that, the last one of the conversation
  ("它到哪了？" after a question about SO10023 is about SO10023);
- a product code (`P-1001`) → `lookup_product`; "my orders" → `my_orders`;
- retrieved passages are in the context → it answers with the best-ranked passage in the
  customer's language that shares enough words with the question, cut at a whole sentence and
  cited by its number;
- the agent has a `search_knowledge` tool → it searches with the message;
- otherwise it answers nothing, and the support bot asks the customer to rephrase (two in a row
  hand the conversation to a human).

Use it as `model: {function: glm_agent.serving.bot.offline_model:reply}` in an agent.yaml.
"""

from __future__ import annotations

import json
import re
from typing import Any

from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from glm_agent.models.function import AgentInfo
from glm_agent.serving.bot.curated import text_features
from glm_agent.serving.bot.replies import language_of, outcome_text, whole_sentences

__all__ = ["reply"]

ORDER_ID = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,3}-?\d{4,})(?![0-9])", re.I)
SKU = re.compile(r"(?<![A-Za-z0-9])(P-\d{3,})(?![0-9])", re.I)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_PASSAGE = re.compile(r"\n\[(\d+)\] ([^\n]*)\n(.*?)(?=\n\[\d+\] |\n</context>|\Z)", re.S)
_INTENTS: list[tuple[str, re.Pattern[str]]] = [
    ("cancel_order", re.compile(r"取消|不要了|cancel", re.I)),
    ("return_order", re.compile(r"退货|退款|退回|\breturn|\brefund", re.I)),
    ("exchange_order", re.compile(r"换货|调换|更换|换一个|exchange|swap|replace", re.I)),
    ("change_address", re.compile(r"地址|address", re.I)),
    (
        "lookup_order",
        re.compile(
            r"到哪|物流|快递|状态|查询|查一下|发货了|签收|没到|送到|"
            r"where|status|track|arriv|deliver",
            re.I,
        ),
    ),
]
_ASKS_HOW = re.compile(
    r"多久|多长时间|什么时候|怎么|如何|吗[？?]?\s*$|how long|when |how do|how does|\bcan i\b", re.I
)
_ACTION = re.compile(
    r"我要|我想|帮我|给我|麻烦|请|申请|办理|"
    r"\bi want\b|\bi'd like\b|\bplease\b|\bcan you\b|\bcould you\b|\bi need\b",
    re.I,
)
"""An action asked for (not a question about the policy): a write intent needs one, so
"退款 SO10055 多久到账？" is a question for the knowledge base, not a return."""
_WRITES = ("cancel_order", "return_order", "exchange_order", "change_address")
_MY_ORDERS = re.compile(r"我的订单|所有订单|哪些订单|my orders|all (of )?my orders", re.I)
_ADDRESS = re.compile(r"(?:改为|改成|换成|改到|寄到|\bto\b|:|：)\s*(.+)$", re.I)
_GREETING = re.compile(
    r"^\s*(你好|您好|嗨|在吗|在不在|哈喽|hi|hello|hey|good (morning|afternoon|evening))"
    r"[\s!！。.,，~？?]*$",
    re.I,
)
_THANKS = re.compile(
    r"^\s*(好的[，,]?\s*)?(谢谢|多谢|感谢|辛苦)(你|您|了|啦|啊)*"
    r"|^\s*(ok,?\s*)?(thanks?( a lot| so much)?|thank you( (very|so) much)?|cheers)"
    r"[\s!！。.,，~]*$",
    re.I,
)
_SMALL_TALK = {
    "greeting": {
        "zh": "您好！我可以帮您查询订单、办理退换货、解答常见问题，请问有什么需要？",
        "en": "Hello! I can look up orders, handle returns and exchanges, and answer questions. "
        "How can I help?",
    },
    "thanks": {
        "zh": "不客气！还有其他需要帮忙的吗？",
        "en": "You're welcome! Is there anything else I can help with?",
    },
}

MIN_OVERLAP = 0.25
"""Share of the question's words / character bigrams a passage must contain to be answered with."""
PASSAGE_CHARS = 320
"""Longest passage excerpt given as an answer (cut back to a whole sentence)."""


def _call(name: str, args: dict[str, Any]) -> AssistantMessage:
    return AssistantMessage(tool_calls=(ToolCall.from_args(name, args),))


_IDS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|[A-Za-z]*-?\d[\w-]*")


def _overlap(question: str, passage: str) -> float:
    # Order numbers, phones and e-mails name the customer's things, not the topic.
    topic = _IDS.sub(" ", question)
    q = {f for f in text_features(topic) if len(f) == 2 or f.startswith("w:")}
    if not q:
        return 0.0
    return len(q & set(text_features(passage))) / len(q)


def _passages(messages: list[Message]) -> list[tuple[str, str, str]]:
    """(number, label, text) of the passages retrieved for the customer's last message: the
    context placed right before it, or a `search_knowledge` result after it (passages of
    earlier turns stay in the transcript but answer earlier questions)."""
    last = max((i for i, m in enumerate(messages) if isinstance(m, UserMessage)), default=-1)
    window = messages[last + 1 :][::-1] + ([messages[last - 1]] if last > 0 else [])
    for m in window:
        text = m.content if isinstance(m, SystemMessage) else getattr(m, "text", "")
        if isinstance(m, SystemMessage | ToolMessage) and "<context>" in text:
            return [(n, label, body.strip()) for n, label, body in _PASSAGE.findall(text)]
    return []


def _best(question: str, found: list[tuple[str, str, str]], lang: str) -> str:
    """The best-ranked relevant passage, in the customer's language when one is."""
    relevant = [p for p in found if _overlap(question, p[1] + " " + p[2]) >= MIN_OVERLAP]
    same = [p for p in relevant if language_of(p[2], lang) == lang]
    for n, _, body in same or relevant:
        return f"{whole_sentences(body, PASSAGE_CHARS)} [{n}]"
    return ""


def _args(call: ToolCall) -> dict[str, Any]:
    try:
        return call.args_dict()
    except ValueError:
        return {}


def _calls_by_id(messages: list[Message]) -> dict[str, ToolCall]:
    return {c.id: c for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls}


def _report(
    messages: list[Message], results: list[ToolMessage], tools: dict[str, ToolDefinition], lang: str
) -> AssistantMessage | str:
    calls = _calls_by_id(messages)
    texts = []
    for result in results:
        call = calls.get(result.tool_call_id)
        name = result.name or (call.name if call else "")
        args = _args(call) if call else {}
        definition = tools.get(name)
        if name == "search_knowledge":
            texts.append(_best(_last_user(messages), _passages([result]), lang))
            continue
        if not result.is_error:
            if definition is not None and definition.templates.get("done"):
                texts.append(outcome_text(definition, name, "done", lang, args, result.text))
            else:
                texts.append(outcome_text(definition, name, "done", lang, args))
            if name == "verify_customer":
                resumed = _blocked_call(messages)
                if resumed is not None:
                    return resumed
            continue
        if result.text.startswith("the call was not approved"):
            texts.append(outcome_text(definition, name, "declined", lang, args))
        elif result.text.startswith("{"):
            data = json.loads(result.text)
            situation = "failed" if data.get("error") == "tool_failed" else "refused"
            texts.append(outcome_text(definition, name, situation, lang, args, data))
        else:
            texts.append(outcome_text(definition, name, "failed", lang, args))
    return "\n".join(t for t in texts if t)


def _blocked_call(messages: list[Message]) -> AssistantMessage | None:
    """The call that was denied for want of a verified customer, to make again once verified."""
    calls = _calls_by_id(messages)
    for m in reversed(messages):
        if isinstance(m, UserMessage):
            continue
        if isinstance(m, ToolMessage) and m.is_error and '"identity_required"' in m.text:
            call = calls.get(m.tool_call_id)
            if call is not None:
                return _call(call.name, _args(call))
    return None


def _last_user(messages: list[Message]) -> str:
    return next((m.text for m in reversed(messages) if isinstance(m, UserMessage)), "")


def _language(messages: list[Message]) -> str:
    """The language of the customer's last message; one that has none (an order number and a
    phone number) keeps the language of the conversation before it."""
    lang = "zh"
    for m in messages:
        if isinstance(m, UserMessage):
            lang = language_of(m.text, lang)
    return lang


def _last_order(messages: list[Message]) -> str | None:
    """The order the conversation is about: the newest order number in the customer's messages
    or in the calls made for them."""
    for m in reversed(messages):
        if isinstance(m, UserMessage):
            found = [o for o in ORDER_ID.findall(m.text) if not SKU.fullmatch(o)]
            if found:
                return str(found[-1]).upper()
        elif isinstance(m, AssistantMessage):
            for c in m.tool_calls:
                order = _args(c).get("order_id")
                if isinstance(order, str):
                    return str(order).upper()
    return None


def _order_call(text: str, order: str, tools: list[str]) -> AssistantMessage | None:
    asking = _ASKS_HOW.search(text) is not None and _ACTION.search(text) is None
    for name, pattern in _INTENTS:
        if name not in tools or not pattern.search(text):
            continue
        if name in _WRITES and asking:
            return None  # a question about how it works: the knowledge base answers
        args: dict[str, Any] = {"order_id": order}
        if name in ("return_order", "exchange_order"):
            args["reason"] = text
        if name == "change_address":
            tail = _ADDRESS.search(text.split(order)[-1])
            if tail is None:
                continue
            args["new_address"] = tail.group(1).strip()
        return _call(name, args)
    return None


def _tool_for(text: str, messages: list[Message], tools: list[str]) -> AssistantMessage | None:
    # SKUs first: "P-1003" would also pass as an order number.
    if (m := SKU.search(text)) is not None and "lookup_product" in tools:
        return _call("lookup_product", {"sku": m.group(1).upper()})
    orders = [o.upper() for o in ORDER_ID.findall(text) if not SKU.fullmatch(o)]
    contact = EMAIL.search(text) or PHONE.search(text)
    if orders and contact is not None and "verify_customer" in tools:
        return _call("verify_customer", {"order_id": orders[0], "contact": contact.group(0)})
    if _MY_ORDERS.search(text) and not orders and "my_orders" in tools:
        return _call("my_orders", {})
    order = orders[0] if orders else _last_order(messages[:-1])
    if order is not None:
        call = _order_call(text, order, tools)
        if call is not None:
            return call
        asking = _ASKS_HOW.search(text) is not None and _ACTION.search(text) is None
        if orders and "lookup_order" in tools and not asking:  # an order number: look it up
            return _call("lookup_order", {"order_id": order})
    return None


def reply(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """One turn of the offline model (see the module docstring for its rules)."""
    text = _last_user(messages)
    lang = _language(messages)
    last = messages[-1] if messages else None
    tools = {d.name: d for d in info.tools}
    if isinstance(last, ToolMessage):
        results: list[ToolMessage] = []
        for m in reversed(messages):
            if not isinstance(m, ToolMessage):
                break
            results.append(m)
        return _report(messages, results[::-1], tools, lang)
    first = messages[0] if messages else None
    if isinstance(first, SystemMessage) and first.content.startswith("Summarise"):
        # A summary request (context compaction, a handoff ticket): the customer's own lines.
        lines = [ln for ln in text.splitlines() if ln.startswith(("user:", "customer:"))]
        return "\n".join(lines[-6:])
    for kind, pattern in (("greeting", _GREETING), ("thanks", _THANKS)):
        if pattern.match(text) and len(text) <= 20:
            return _SMALL_TALK[kind][lang]
    call = _tool_for(text, messages, info.tool_names)
    if call is not None:
        return call
    found = _passages(messages)
    if found:
        return _best(text, found, lang)
    if "search_knowledge" in info.tool_names:
        return _call("search_knowledge", {"query": text})
    return ""
