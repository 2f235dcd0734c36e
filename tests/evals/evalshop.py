"""A small shop agent for the evaluation tests, written as files an agent.yaml and a dataset name:
its model, tools, environment, simulated customer and judge are scripted functions here.

The tests copy this module beside their agent.yaml; everything reaches it as `evalshop:...`.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from glm_agent import AgentInfo, AssistantMessage, Message, RunContext, ToolCall, tool
from glm_agent.exceptions import ModelError
from glm_agent.messages import SystemMessage, ToolMessage, UserMessage

ORDERS = {"A-1": "shipped", "A-2": "processing", "A-3": "delivered"}
running = 0
most_running = 0


@tool(idempotent=True)
def lookup_order(ctx: RunContext[dict[str, str]], order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order number, e.g. A-1.
    """
    if order_id not in ctx.deps:
        raise ValueError(f"no order {order_id}")
    return {"order_id": order_id, "status": ctx.deps[order_id]}


@tool(requires_approval=True)
def cancel_order(ctx: RunContext[dict[str, str]], order_id: str) -> dict[str, str]:
    """Cancel an order.

    Args:
        order_id: The order number.
    """
    ctx.deps[order_id] = "cancelled"
    return {"order_id": order_id, "status": "cancelled"}


@tool
def hand_off(reason: str) -> str:
    """Hand the conversation to a human.

    Args:
        reason: Why.
    """
    return "transferring"


class ShopEnvironment:
    """A fresh copy of the orders for every case; the orders as the final state."""

    def __init__(self, dataset_dir: Path) -> None:
        self.dataset_dir = dataset_dir

    def deps(self, case: Any) -> dict[str, str]:
        return dict(ORDERS)

    def state(self, case: Any, deps: dict[str, str]) -> dict[str, Any]:
        return {"orders": dict(deps)}


async def reply(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """The shop's scripted model (async, so that concurrent conversations overlap)."""
    global running, most_running
    running += 1
    most_running = max(most_running, running)
    try:
        await asyncio.sleep(0.02)
    finally:
        running -= 1
    last = messages[-1]
    if isinstance(last, ToolMessage):
        if last.is_error:
            return "OK, I did not cancel it." if "not approved" in last.content else last.content
        data = json.loads(last.content) if last.content.startswith("{") else {}
        if last.name == "hand_off":
            return "A colleague will take over."
        return f"Order {data.get('order_id')} is {data.get('status')}."
    text = next(m.content for m in reversed(messages) if isinstance(m, UserMessage))
    if "crash" in text:
        raise RuntimeError("the model process died")
    if "backend" in text:
        raise ModelError("the model backend answered 503")
    order = re.search(r"A-\d", text)
    if "human" in text:
        return AssistantMessage(tool_calls=(ToolCall.from_args("hand_off", {"reason": text}),))
    if order and "cancel" in text.lower():
        return AssistantMessage(
            tool_calls=(ToolCall.from_args("cancel_order", {"order_id": order[0]}),)
        )
    if order:
        return AssistantMessage(
            tool_calls=(ToolCall.from_args("lookup_order", {"order_id": order[0]}),)
        )
    return "How can I help?"


def customer(messages: list[Message], info: AgentInfo) -> str:
    """A simulated customer whose scenario reads `GOAL: cancel A-2` (add `DECLINE` to say no)."""
    scenario = messages[0].content if isinstance(messages[0], SystemMessage) else ""
    goal = re.search(r"GOAL: (.*)", scenario)
    said = [m for m in messages if isinstance(m, AssistantMessage)]
    if not said:
        return f"Please {goal[1] if goal else 'help'}."
    last = messages[-1].content if isinstance(messages[-1], UserMessage) else ""
    if last.startswith("Please confirm"):
        return "no" if "DECLINE" in scenario else "yes"
    return "###STOP###"


def judge(messages: list[Message], info: AgentInfo) -> str:
    """A judge: passes a conversation that says "shipped"; garbles its answer on "garble"."""
    text = messages[-1].content or ""
    if "garble" in text:
        return "I think it is fine"
    ok = "shipped" in text.split("Conversation:")[1]
    return json.dumps(
        {"pass": ok, "score": 1.0 if ok else 0.2, "reason": "status told" if ok else "no status"}
    )
