"""The offline model: a scripted stand-in for an LLM so the support example runs with no weights.

It is not a language model. Each turn it follows fixed rules:

- a tool result arrived → it reports the result (or the error) in the customer's language;
- the message names an order id (`SO10023`, `A-1042`) → it calls the tool for the intent the
  message's keywords show: `cancel_order`, `return_order`, `exchange_order`, `change_address`,
  else `lookup_order`; a product SKU (`P-1001`) → `lookup_product`; an e-mail or mobile number
  → `lookup_customer` (each only if the agent has a tool of that name);
- retrieved passages are in the context → it answers with the first passage that shares enough
  words (character bigrams for Chinese) with the message, cited by its number;
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
    ToolMessage,
    UserMessage,
)
from glm_agent.models.function import AgentInfo
from glm_agent.serving.bot.curated import text_features

__all__ = ["reply"]

ORDER_ID = re.compile(r"\b([A-Z]{1,3}-?\d{4,})\b", re.I)
SKU = re.compile(r"\b(P-\d{3,})\b", re.I)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_CJK = re.compile(r"[\u3400-\u9fff]")
_PASSAGE = re.compile(r"\n\[(\d+)\] ([^\n]*)\n(.*?)(?=\n\[\d+\] |\n</context>|\Z)", re.S)
_INTENTS: list[tuple[str, re.Pattern[str]]] = [
    ("cancel_order", re.compile(r"取消|cancel", re.I)),
    ("return_order", re.compile(r"退货|退款|退回|\breturn|\brefund", re.I)),
    ("exchange_order", re.compile(r"换货|调换|更换|exchange|swap", re.I)),
    ("change_address", re.compile(r"地址|address", re.I)),
]
_ADDRESS = re.compile(r"(?:改为|改成|换成|to|:|：)\s*(.+)$", re.I)
_FIELD_NAMES_ZH = {
    "order_id": "订单号",
    "status": "状态",
    "items": "商品",
    "total": "金额",
    "address": "地址",
    "created_at": "下单时间",
    "eta": "预计送达",
    "name": "名称",
    "price": "价格",
    "stock": "库存",
    "ticket_id": "工单号",
    "customer_id": "客户编号",
    "message": "说明",
}


def _zh(text: str) -> bool:
    return bool(_CJK.search(text))


def _call(name: str, args: dict[str, Any]) -> AssistantMessage:
    return AssistantMessage(tool_calls=(ToolCall.from_args(name, args),))


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _report(result: ToolMessage, zh: bool) -> str:
    if result.is_error:
        if "not approved" in result.content:
            return "好的，已取消该操作。" if zh else "OK, I have not done it."
        return (
            f"抱歉，操作没有成功：{result.content}"
            if zh
            else f"Sorry, that did not work: {result.content}"
        )
    try:
        data = json.loads(result.content)
    except ValueError:
        return result.content
    if not isinstance(data, dict):
        return _format_value(data)
    if "message" in data and len(data) <= 2:
        return str(data["message"])
    names = _FIELD_NAMES_ZH if zh else {}
    lines = [f"{names.get(k, k)}: {_format_value(v)}" for k, v in data.items()]
    return ("查询结果：\n" if zh else "Here is what I found:\n") + "\n".join(lines)


MIN_OVERLAP = 0.3
"""Share of the question's words / character bigrams a passage must contain to be answered with."""


def _overlap(question: str, passage: str) -> float:
    q = {f for f in text_features(question) if len(f) == 2 or f.startswith("w:")}
    if not q:
        return 0.0
    return len(q & set(text_features(passage))) / len(q)


def _best(question: str, found: list[tuple[str, str, str]]) -> str:
    for n, label, body in found:
        if _overlap(question, label + " " + body) >= MIN_OVERLAP:
            return f"{body[:400]} [{n}]"
    return ""


def _passages(messages: list[Message]) -> list[tuple[str, str, str]]:
    for m in reversed(messages):
        if isinstance(m, SystemMessage | ToolMessage) and "<context>" in (m.content or ""):
            return [(n, label, body.strip()) for n, label, body in _PASSAGE.findall(m.content)]
    return []


def _tool_for(text: str, tools: list[str]) -> AssistantMessage | None:
    # SKUs first: "P-1003" would also pass as an order id.
    if (m := SKU.search(text)) is not None and "lookup_product" in tools:
        return _call("lookup_product", {"sku": m.group(1).upper()})
    if (m := ORDER_ID.search(text)) is not None:
        order = m.group(1).upper()
        for name, pattern in _INTENTS:
            if name in tools and pattern.search(text):
                args: dict[str, Any] = {"order_id": order}
                if name in ("return_order", "exchange_order"):
                    args["reason"] = text
                if name == "change_address":
                    tail = _ADDRESS.search(text[m.end() :])
                    if tail is None:
                        continue
                    args["new_address"] = tail.group(1).strip()
                return _call(name, args)
        if "lookup_order" in tools:
            return _call("lookup_order", {"order_id": order})
    contact = EMAIL.search(text) or PHONE.search(text)
    if contact is not None and "lookup_customer" in tools:
        return _call("lookup_customer", {"contact": contact.group(0)})
    return None


def reply(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """One turn of the offline model (see the module docstring for its rules)."""
    users = [m.content for m in messages if isinstance(m, UserMessage)]
    text = users[-1] if users else ""
    zh = _zh(text)
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        if last.name == "search_knowledge":
            return _best(text, _passages([last]))
        results = []
        for m in reversed(messages):
            if not isinstance(m, ToolMessage):
                break
            results.append(_report(m, zh))
        return "\n\n".join(reversed(results))
    if isinstance(last, SystemMessage) and not users:
        # A summary request (handoff tickets, context compaction) is answered extractively.
        return ""
    call = _tool_for(text, info.tool_names)
    if call is not None:
        return call
    found = _passages(messages)
    if found:
        return _best(text, found)
    if "search_knowledge" in info.tool_names:
        return _call("search_knowledge", {"query": text})
    return ""
