"""A scripted model for the support example: it decides each turn with plain rules, so the
example runs anywhere. A real deployment names a GLM model in agent.yaml instead."""

import json
import re

from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from glm_agent.models import AgentInfo

_ORDER = re.compile(r"\b[A-Z]-\d{4}\b")


def reply(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """One turn: call a tool for order ids and refunds, answer from tool results."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return _answer([m for m in messages if isinstance(m, ToolMessage)][-1])
    asked = sum(isinstance(m, UserMessage) for m in messages)
    text = last.content if isinstance(last, UserMessage) else ""
    orders = _ORDER.findall(text or "")
    if orders and "order_status" in info.tool_names:
        calls = [ToolCall.from_args("order_status", {"order_id": o}) for o in orders]
        return AssistantMessage(tool_calls=tuple(calls))
    if "refund" in (text or "").lower() and "refund_policy" in info.tool_names:
        return AssistantMessage(tool_calls=(ToolCall.from_args("refund_policy", {}),))
    return (
        f"Hello! I can look up orders (e.g. 'Where is my order A-1042?') and explain refunds. "
        f"(message {asked} of this conversation)"
    )


def _answer(result: ToolMessage) -> str:
    if result.is_error:
        return f"Sorry, I could not find that: {result.content}"
    try:
        data = json.loads(result.content)
    except ValueError:
        return result.content
    if isinstance(data, dict) and "order_id" in data:
        eta = f", expected {data['eta']}" if data.get("eta") else ""
        return f"Order {data['order_id']} is {data['status']}{eta}."
    return str(data)
