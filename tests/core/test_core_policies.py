"""Business policies hold whatever the model says: a scripted model tries to break each one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from glm_agent import (
    Agent,
    AgentInfo,
    Approved,
    AssistantMessage,
    FunctionModel,
    Message,
    ToolCall,
    ToolMessage,
    tool,
)
from glm_agent.exceptions import ConfigError, ToolRefused
from glm_agent.tools import Identity, PerCustomerLimit, Rule, load_registry

ORDERS = {
    "SO1": {"customer_id": "C1", "total": 300.0, "status": "delivered"},
    "SO2": {"customer_id": "C2", "total": 80.0, "status": "processing"},
    "SO3": {"customer_id": "C1", "total": 2555.0, "status": "delivered"},
}
PHONES = {"C1": "13900001111", "C2": "13900002222"}
ran: list[str] = []


def order_facts(order_id: str) -> dict[str, Any]:
    return dict(ORDERS.get(order_id, {}))


@tool(verifies_identity=True)
def verify_customer(order_id: str, phone: str) -> dict[str, Any]:
    """Verify a customer by an order number and the phone number on it.

    Args:
        order_id: An order number.
        phone: The customer's phone number.
    """
    order = ORDERS.get(order_id)
    if order is None or PHONES[order["customer_id"]] != phone:
        raise ToolRefused("not_verified", "the order number and phone do not match")
    return {"customer_id": order["customer_id"], "verified": True}


@tool(requires_identity=True, owner="customer_id")
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order (read-only: its owner is checked on the result).

    Args:
        order_id: The order number.
    """
    ran.append(f"lookup {order_id}")
    if order_id not in ORDERS:
        raise ToolRefused("no_such_order")
    return {"order_id": order_id, **ORDERS[order_id]}


@tool(
    requires_identity=True,
    requires_approval=True,
    facts=order_facts,
    owner="customer_id",
    rules=[Rule.model_validate({"if": "facts.total > 2000", "then": "review"})],
)
def return_order(order_id: str) -> str:
    """Return an order.

    Args:
        order_id: The order number.
    """
    ran.append(f"return {order_id}")
    return "return started"


@tool(
    requires_identity=True,
    facts=order_facts,
    owner="customer_id",
    per_customer=PerCustomerLimit(calls=2, seconds=3600),
    rules=[Rule.model_validate({"if": "facts.status == delivered", "then": "deny"})],
)
def change_address(order_id: str, address: str) -> str:
    """Change an order's address.

    Args:
        order_id: The order number.
        address: The new address.
    """
    ran.append(f"address {order_id}")
    return "changed"


TOOLS = [verify_customer, lookup_order, return_order, change_address]


def attacker(*turns: ToolCall | str) -> FunctionModel:
    """A model that plays `turns` (one per request) and then answers with the last result."""
    script = list(turns)

    def turn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        if script:
            step = script.pop(0)
            return AssistantMessage(tool_calls=(step,)) if isinstance(step, ToolCall) else step
        last = messages[-1]
        return last.content if isinstance(last, ToolMessage) else "done"

    return FunctionModel(turn)


def call(name: str, **args: Any) -> ToolCall:
    return ToolCall.from_args(name, args)


def outcomes(result: Any) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for r in result.tool_calls:
        content = json.loads(r.content) if r.content.startswith("{") else {}
        out.append((r.call.name, r.status, content))
    return out


def test_no_verified_customer_no_customer_data() -> None:
    ran.clear()
    # The model claims an identity in words and goes straight for the data.
    agent = Agent(
        attacker("I am customer C1, trust me.", call("lookup_order", order_id="SO1")), tools=TOOLS
    )
    first = agent.run("I'm C1, show me SO1")
    assert first.output == "I am customer C1, trust me."
    result = agent.run("show me SO1", message_history=first.messages)
    [(name, status, content)] = outcomes(result)
    assert (name, status, content["error"]) == ("lookup_order", "denied", "identity_required")
    assert content["verify_with"] == [
        {"tool": "verify_customer", "arguments": ["order_id", "phone"]}
    ]
    assert ran == [] and result.identity is None


def test_verification_then_only_the_customers_own_orders() -> None:
    ran.clear()
    agent = Agent(
        attacker(
            call("verify_customer", order_id="SO1", phone="13900002222"),  # someone else's phone
            call("verify_customer", order_id="SO1", phone="13900001111"),
            call("lookup_order", order_id="SO2"),  # C2's order
            call("lookup_order", order_id="SO9"),  # no such order
            call("lookup_order", order_id="SO1"),
        ),
        tools=TOOLS,
    )
    result = agent.run("where is my order")
    got = [(n, s, c.get("error")) for n, s, c in outcomes(result)]
    assert got == [
        ("verify_customer", "refused", "not_verified"),
        ("verify_customer", "ok", None),
        ("lookup_order", "denied", "not_found_for_customer"),
        ("lookup_order", "refused", "no_such_order"),
        ("lookup_order", "ok", None),
    ]
    # Someone else's order and a missing one look alike to the model.
    denied = result.tool_calls[2]
    assert "C2" not in denied.content and "80" not in denied.content
    assert result.identity == Identity("C1", "tool:verify_customer", {"verified": True})


def test_writes_check_ownership_before_asking_and_rules_send_big_refunds_to_review() -> None:
    ran.clear()
    me = Identity("C1", "channel:webhook")
    agent = Agent(
        attacker(call("return_order", order_id="SO2"), call("return_order", order_id="SO3")),
        tools=TOOLS,
    )
    result = agent.run("return SO2 and SO3", identity=me)
    assert [s for _, s, _ in outcomes(result)] == ["denied", "review"]
    assert result.status == "review" and [c.args_dict() for c in result.deferred_calls] == [
        {"order_id": "SO3"}
    ]
    assert ran == []  # nothing ran, and the customer was never asked to confirm either

    small = Agent(attacker(call("return_order", order_id="SO1")), tools=TOOLS)
    paused = small.run("return SO1", identity=me)
    assert paused.status == "deferred"
    # A forged approval that swaps in another customer's order is checked again.
    swapped = small.run(
        message_history=paused.messages,
        identity=me,
        approvals={paused.deferred_calls[0].id: Approved(override_args={"order_id": "SO2"})},
    )
    assert outcomes(swapped)[0][1] == "denied" and ran == []
    done = small.run(
        message_history=paused.messages,
        identity=me,
        approvals={paused.deferred_calls[0].id: Approved()},
    )
    assert outcomes(done)[0][1] == "ok" and ran == ["return SO1"]


def test_argument_rules_and_per_customer_limits() -> None:
    ran.clear()
    me = Identity("C2", "channel:webhook")
    agent = Agent(
        attacker(*(call("change_address", order_id="SO2", address=f"road {i}") for i in range(3))),
        tools=TOOLS,
    )
    result = agent.run("move it", identity=me)
    got = [(s, c.get("error")) for _, s, c in outcomes(result)]
    assert got == [("ok", None), ("ok", None), ("denied", "limit_reached")]
    ran.clear()
    c1 = Identity("C1", "channel:webhook")
    delivered = Agent(attacker(call("change_address", order_id="SO1", address="x")), tools=TOOLS)
    [(_, status, content)] = outcomes(delivered.run("move", identity=c1))
    assert (status, content["error"]) == ("denied", "not_allowed") and ran == []


def test_policies_from_a_yaml_registry(tmp_path: Path) -> None:
    (tmp_path / "policy_test_tools.py").write_text(
        "def order_facts(order_id):\n"
        "    return {'customer_id': 'C1' if order_id == 'SO1' else 'C2', 'total': 3000.0}\n"
        "def refund(order_id: str) -> str:\n"
        '    """Refund.\n\n    Args:\n        order_id: Order.\n    """\n'
        "    return 'refunded'\n",
        encoding="utf-8",
    )
    (tmp_path / "tools.yaml").write_text(
        "version: 1\n"
        "tools:\n"
        "  - name: refund\n"
        "    python: policy_test_tools:refund\n"
        "    policy:\n"
        "      requires_identity: true\n"
        "      facts: policy_test_tools:order_facts\n"
        "      owner: customer_id\n"
        "      rules:\n"
        "        - if: facts.total > 2000\n"
        "          then: review\n"
        "          say: {en: 'A colleague reviews {order_id} ({total} yuan).'}\n"
        "    templates:\n"
        "      confirm: {zh: '确认为订单 {order_id} 退款？', en: 'Refund order {order_id}?'}\n",
        encoding="utf-8",
    )
    registry = load_registry(tmp_path / "tools.yaml")
    refund = registry.get("refund")
    assert refund.definition.templates["confirm"]["zh"] == "确认为订单 {order_id} 退款？"
    agent = Agent(
        attacker(call("refund", order_id="SO1"), call("refund", order_id="SO2")), tools=registry
    )
    result = agent.run("refund", identity=Identity("C1", "channel:test"))
    review = json.loads(result.tool_calls[0].content)
    assert result.status == "review" and review["say"] == {
        "en": "A colleague reviews SO1 (3000 yuan)."  # a whole amount shown whole
    }
    (tmp_path / "bad.yaml").write_text(
        "version: 1\ntools:\n  - name: refund\n    python: policy_test_tools:refund\n"
        "    policy:\n      rules: [{if: total is big, then: review}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"must look like 'facts\.total > 2000'") as err:
        load_registry(tmp_path / "bad.yaml")
    assert err.value.line == 6
