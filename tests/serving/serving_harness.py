"""Agents driven by FunctionModel, and a real uvicorn server on 127.0.0.1 in a thread."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from glm_agent.models import AgentInfo, FunctionModel

ORDERS = {"A-1042": "shipped", "A-1043": "processing"}


def order_status(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order number, e.g. A-1042.
    """
    if order_id not in ORDERS:
        raise ValueError(f"no order {order_id}")
    return {"order_id": order_id, "status": ORDERS[order_id]}


def support_turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """Calls order_status for an order id; remembers a name told earlier in the session."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        data = json.loads(last.content)
        return f"Order {data['order_id']} is {data['status']}."
    users = [m.content for m in messages if isinstance(m, UserMessage)]
    text = users[-1]
    if (m := re.search(r"[A-Z]-\d{4}", text)) and info.settings.tool_choice != "none":
        return AssistantMessage(
            tool_calls=(ToolCall.from_args("order_status", {"order_id": m[0]}),)
        )
    if m := re.match(r"my name is (\S+)", text):
        return f"Nice to meet you, {m[1]}."
    names = [n[1] for u in users if (n := re.match(r"my name is (\S+)", u))]
    return f"You are {names[-1] if names else 'unknown'} (turn {len(users)})."


def plain_turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
    """A plain model: calls the client's first tool, then answers with the tool's result."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return f"The tool said: {last.content}"
    if info.tools and info.settings.tool_choice != "none":
        tool = info.tools[0]
        return AssistantMessage(tool_calls=(ToolCall.from_args(tool.name, {"city": "Paris"}),))
    text = last.content if isinstance(last, UserMessage) else ""
    return f"echo: {text}"


def make_agent(tmp_path: Path, name: str = "support", memory: bool = True) -> Agent[str]:
    """The support agent with a SQLite session store under `tmp_path`."""
    return Agent(
        FunctionModel(support_turn, name=name),
        tools=[order_status],
        system_prompt="You are a support bot.",
        name=name,
        memory=SQLiteStore(str(tmp_path / f"{name}.db")) if memory else None,
    )


def plain_model() -> FunctionModel:
    """The plain model served beside the agents."""
    return FunctionModel(plain_turn, name="plain")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn in a thread; yields its base URL."""
    from glm_agent.serving import make_server

    port = free_port()
    server = make_server(app, host="127.0.0.1", port=port, log_level="warning", graceful_timeout=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.glm.request_shutdown()
        server.should_exit = True
        thread.join(10)
