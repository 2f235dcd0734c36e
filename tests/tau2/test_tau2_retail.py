"""The tau2-bench retail tools as a YAML registry, replayed through the agent loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from glm_agent import RunContext
from glm_agent.tools import load_registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tau2-retail"
DATA = ROOT.parent / "shared" / "data" / "tau2-retail"
needs_data = pytest.mark.skipif(
    not (DATA / "db.json").exists(), reason="../shared/data/tau2-retail is not present"
)

sys.path.insert(0, str(EXAMPLE))
sys.path.insert(0, str(ROOT / "benchmarks"))

import retail_tools as rt  # noqa: E402


def call(db: rt.RetailDB, name: str, **args: Any) -> tuple[str, bool]:
    """Run one tool of the YAML registry the way the agent loop does; (content, is_error)."""
    from glm_agent._execution import execute_calls
    from glm_agent.messages import ToolCall

    registry = load_registry(EXAMPLE / "tools.yaml")
    ctx: RunContext[rt.RetailDB] = RunContext(deps=db)
    records = asyncio.run(
        execute_calls(
            [ToolCall.from_args(name, args)],
            registry,
            ctx,
            approval_handler=lambda c, tc, a: True,
        )
    )
    return records[0].content, records[0].status != "ok"


def test_canonical_json_test_vector() -> None:
    value = {
        "b": 56.0,
        "a": [0.1, 68.92000000000004, 1e16, 1e-5],
        "c": None,
        "d": True,
        "é": 'ü "q"\n/',
    }
    db = rt.RetailDB({"products": {}, "users": {}, "orders": {}})
    db.data = value  # canonical_hash hashes the raw data as it is
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    expected = '{"a":[0.1,68.92000000000004,1e+16,1e-05],"b":56.0,"c":null,"d":true,'
    expected += '"é":"ü \\"q\\"\\n/"}'
    assert text == expected
    assert db.canonical_hash() == hashlib.sha256(text.encode()).hexdigest()
    assert db.canonical_hash() == "9b71e093f5b2c696e9b198fcdeb592f93fcfd6a6ea260f2776627cbad78f77da"


def test_calculate() -> None:
    db = rt.RetailDB({"products": {}, "users": {}, "orders": {}})
    assert call(db, "calculate", expression="3131.1 + 4777.75 + 367.38") == ("8276.23", False)
    assert call(db, "calculate", expression="1 / 3") == ("0.33", False)
    assert call(db, "calculate", expression="-0.001") == ("-0.0", False)
    assert call(db, "calculate", expression="__import__('os')") == (
        "Error: Invalid characters in expression",
        True,
    )


@needs_data
def test_registry_matches_the_domain_tool_schemas() -> None:
    registry = load_registry(EXAMPLE / "tools.yaml")
    domain = json.loads((DATA / "tools.json").read_text())
    assert registry.names == [t["function"]["name"] for t in domain]
    for spec in domain:
        ours = registry.get(spec["function"]["name"]).definition.parameters
        theirs = spec["function"]["parameters"]
        assert list(ours["properties"]) == list(theirs["properties"])
        assert sorted(ours.get("required", [])) == sorted(theirs.get("required", []))
        for key, prop in theirs["properties"].items():
            assert ours["properties"][key]["type"] == prop["type"], key


@needs_data
def test_replay_of_every_train_task_matches_golden_hashes_and_outputs() -> None:
    import tau2_retail_replay

    assert tau2_retail_replay.main(["--json", "/dev/null"]) == 0


@pytest.fixture(scope="module")
def base_db() -> rt.RetailDB:
    if not (DATA / "db.json").exists():
        pytest.skip("../shared/data/tau2-retail is not present")
    return rt.RetailDB.load(DATA / "db.json")


def _order(db: rt.RetailDB, status: str) -> dict[str, Any]:
    return next(o for o in db.orders.values() if o["status"] == status)


def test_exact_versus_contains_pending(base_db: rt.RetailDB) -> None:
    db = base_db.copy()
    order = _order(db, "pending")
    order["status"] = "pending (item modified)"
    oid = order["order_id"]
    assert call(db, "cancel_pending_order", order_id=oid, reason="no longer needed") == (
        "Error: Non-pending order cannot be cancelled",
        True,
    )
    content, error = call(
        db,
        "modify_pending_order_address",
        order_id=oid,
        address1="1 A St",
        address2="",
        city="X",
        state="CA",
        country="USA",
        zip="00001",
    )
    assert not error and json.loads(content)["address"]["address1"] == "1 A St"
    item = order["items"][0]["item_id"]
    assert call(
        db,
        "modify_pending_order_items",
        order_id=oid,
        item_ids=[item],
        new_item_ids=[item],
        payment_method_id="x",
    )[0] == ("Error: Non-pending order cannot be modified")


def test_error_check_order_status_before_reason(base_db: rt.RetailDB) -> None:
    db = base_db.copy()
    oid = _order(db, "delivered")["order_id"]
    assert call(db, "cancel_pending_order", order_id=oid, reason="bogus")[0] == (
        "Error: Non-pending order cannot be cancelled"
    )
    oid = _order(db, "pending")["order_id"]
    assert call(db, "cancel_pending_order", order_id=oid, reason="bogus")[0] == (
        "Error: Invalid reason"
    )


def test_exchange_accepts_an_item_for_itself(base_db: rt.RetailDB) -> None:
    db = base_db.copy()
    order = _order(db, "delivered")
    item = order["items"][0]
    variant = db.products[item["product_id"]]["variants"][item["item_id"]]
    if not variant["available"]:
        pytest.skip("first delivered item is unavailable")
    content, error = call(
        db,
        "exchange_delivered_order_items",
        order_id=order["order_id"],
        item_ids=[item["item_id"]],
        new_item_ids=[item["item_id"]],
        payment_method_id=order["payment_history"][0]["payment_method_id"],
    )
    assert not error
    assert json.loads(content)["exchange_price_difference"] == 0.0


def test_return_gift_card_exemption_and_original_method(base_db: rt.RetailDB) -> None:
    db = base_db.copy()
    for order in db.orders.values():
        if order["status"] != "delivered":
            continue
        methods = db.users[order["user_id"]]["payment_methods"]
        original = order["payment_history"][0]["payment_method_id"]
        gift = [m for m, v in methods.items() if v["source"] == "gift_card" and m != original]
        other = [m for m, v in methods.items() if v["source"] != "gift_card" and m != original]
        if gift and other:
            break
    else:
        pytest.skip("no delivered order whose user has a gift card and another method")
    items = [order["items"][0]["item_id"]]
    assert call(
        db,
        "return_delivered_order_items",
        order_id=order["order_id"],
        item_ids=items,
        payment_method_id=other[0],
    )[0] == ("Error: Payment method should be the original payment method")
    content, error = call(
        db,
        "return_delivered_order_items",
        order_id=order["order_id"],
        item_ids=items,
        payment_method_id=gift[0],
    )
    assert not error and json.loads(content)["status"] == "return requested"


def test_zero_difference_is_a_refund(base_db: rt.RetailDB) -> None:
    db = base_db.copy()
    order = _order(db, "pending")
    pm = order["payment_history"][0]["payment_method_id"]
    content, error = call(
        db,
        "modify_pending_order_items",
        order_id=order["order_id"],
        item_ids=[],
        new_item_ids=[],
        payment_method_id=pm,
    )
    assert not error
    entry = json.loads(content)["payment_history"][-1]
    assert entry == {"transaction_type": "refund", "amount": 0.0, "payment_method_id": pm}


def test_failed_calls_leave_the_db_unchanged(base_db: rt.RetailDB) -> None:
    db = base_db.copy()
    before = db.canonical_hash()
    oid = _order(db, "delivered")["order_id"]
    call(
        db,
        "exchange_delivered_order_items",
        order_id=oid,
        item_ids=["nope"],
        new_item_ids=["nope2"],
        payment_method_id="x",
    )
    call(db, "get_order_details", order_id="#W0000000")
    assert db.canonical_hash() == before


@needs_data
def test_example_agent_uses_the_domain_policy_and_tools() -> None:
    from glm_agent import Agent

    agent = Agent.from_yaml(str(EXAMPLE / "agent.yaml"))
    assert agent.system_prompt == (DATA / "policy.md").read_text(encoding="utf-8")
    assert len(agent.tools) == 16 and "cancel_pending_order" in agent.tools
    assert agent.tools.get("cancel_pending_order").policy.requires_approval
    # a served agent has no deps: the tools fall back to the domain's db.json
    content, error = call_without_deps("find_user_id_by_email", email="NOBODY@example.com")
    assert (content, error) == ("Error: User not found", True)


def call_without_deps(name: str, **args: Any) -> tuple[str, bool]:
    from glm_agent._execution import execute_calls
    from glm_agent.messages import ToolCall

    registry = load_registry(EXAMPLE / "tools.yaml")
    records = asyncio.run(
        execute_calls([ToolCall.from_args(name, args)], registry, RunContext(deps=None))
    )
    return records[0].content, records[0].status != "ok"
