"""Conversations with an agent itself: simulated customers, confirmations, the environment's
state, rubrics judged by a model, errors, handoff by tool, concurrency, model overrides."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import evalshop
import pytest

from glm_agent.evals import current_case, run_eval
from glm_agent.exceptions import UserError

AGENT = """\
name: shop
model: {function: evalshop:reply}
tools: [evalshop:lookup_order, evalshop:cancel_order, evalshop:hand_off]
memory: none
"""

DATASET = """\
name: shop
agent: agent.yaml
environment: evalshop:ShopEnvironment
user: {model: {function: evalshop:customer}}
models:
  judge: {function: evalshop:judge}
policy:
  - confirm_before: [cancel_order]
reward: [state, tools]
cases:
  - id: cancel-confirmed
    user: {scenario: "GOAL: cancel order A-2"}
    expect:
      tools: [{name: cancel_order, args: {order_id: a-2}}]
      state: {orders.A-2: cancelled}
  - id: cancel-declined
    user: {scenario: "GOAL: cancel order A-2\\nDECLINE"}
    expect:
      contains: [did not cancel]
      state: {orders.A-2: processing}
  - id: lookup
    turns:
      - text: "Where is A-1?"
        expect: {tools: [{name: lookup_order, args: {order_id: A-1}}], contains: [shipped]}
    expect: {rubric: The assistant tells the customer the order's status., handoff: false}
  - id: lookup-unjudgeable
    turns: ["Where is A-3?"]
    expect: {rubric: "garble: the judge cannot answer this one"}
  - id: handoff-by-tool
    turns: [I want a human, "Are you there?"]
    expect: {handoff: true, tools: [{name: hand_off}]}
  - id: backend-down
    turns: ["the backend is down?"]
    expect: {contains: [anything]}
  - id: model-crash
    turns: [crash now]
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "agent.yaml").write_text(AGENT, encoding="utf-8")
    (tmp_path / "shop.yaml").write_text(DATASET, encoding="utf-8")
    return tmp_path / "shop.yaml"


def by_id(report: object) -> dict[str, object]:
    return {c.id: c for c in report.cases}  # type: ignore[attr-defined]


def test_conversations_with_the_agent(shop: Path) -> None:
    report = asyncio.run(run_eval(shop, judge="judge", concurrency=2))
    cases = by_id(report)

    confirmed = cases["cancel-confirmed"]
    assert confirmed.passed, confirmed.checks
    turns = confirmed.conversation["turns"]
    assert [t["customer"] for t in turns] == ["Please cancel order A-2.", "yes"]
    assert turns[0]["replies"][0]["text"].startswith("Please confirm this action: cancel_order")
    [call] = turns[1]["tools"]
    assert call["name"] == "cancel_order" and call["status"] == "ok" and call["confirmed"]
    assert confirmed.conversation["state"]["orders"]["A-2"] == "cancelled"
    assert confirmed.conversation["ended"] == "user_stop"
    assert confirmed.scores["reward"] == 1.0 and confirmed.scores["policy_violations"] == 0

    declined = cases["cancel-declined"]
    assert declined.passed, declined.checks
    [call] = declined.conversation["turns"][1]["tools"]
    assert call["status"] == "rejected" and not call["confirmed"]
    # A fresh copy of the orders per case: the other case's cancellation is not seen here.
    assert declined.conversation["state"]["orders"]["A-2"] == "processing"
    assert declined.scores["reward"] == 1.0  # no tools expected; state as expected

    lookup = cases["lookup"]
    assert lookup.passed and lookup.checks["rubric"]["reason"] == "status told"
    unjudgeable = cases["lookup-unjudgeable"]
    assert not unjudgeable.passed
    assert "not a verdict" in unjudgeable.checks["rubric"]["reason"]

    handoff = cases["handoff-by-tool"]
    assert handoff.passed and handoff.conversation["ended"] == "handoff"
    assert handoff.conversation["skipped_turns"] == 1
    assert handoff.conversation["turns"][0]["handoff_trigger"] == "model_tool"

    down = cases["backend-down"]
    assert not down.passed and down.error is None
    assert "ModelError: the model backend answered 503" in down.checks["completed"]["reason"]
    assert down.scores["reward"] == 0.0

    crash = cases["model-crash"]
    assert not crash.passed and "the model process died" in (crash.error or "")
    assert crash.conversation is None

    assert report.rubrics_skipped == 0
    assert report.scores["handoff_precision"] == 1.0 and report.scores["handoff_recall"] == 1.0
    assert report.settings["judge"] == "judge (evalshop:judge)"
    assert report.settings["user_model"] == "evalshop:customer"
    assert report.settings["model"] == "evalshop:reply"


def test_without_a_judge_rubrics_are_skipped_and_counted(shop: Path) -> None:
    report = asyncio.run(run_eval(shop, cases=["lookup", "lookup-unjudgeable"]))
    assert report.rubrics_skipped == 2
    assert all(c.passed for c in report.cases)
    assert all("rubric" not in c.checks for c in report.cases)


def test_conversations_run_concurrently_up_to_the_limit(shop: Path) -> None:
    evalshop.most_running = 0
    asyncio.run(
        run_eval(
            shop,
            concurrency=3,
            tags=(),
            cases=["lookup", "cancel-confirmed", "cancel-declined", "handoff-by-tool"],
        )
    )
    assert evalshop.most_running == 3
    evalshop.most_running = 0
    asyncio.run(
        run_eval(shop, concurrency=1, cases=["lookup", "cancel-confirmed", "cancel-declined"])
    )
    assert evalshop.most_running == 1


def test_the_model_is_replaced_by_a_model_string(shop: Path) -> None:
    """`--model test`: glm-agent's TestModel calls every tool with schema-valid arguments."""
    report = asyncio.run(run_eval(shop, model="test", cases=["lookup"]))
    [case] = report.cases
    assert report.settings["model"] == "test"
    names = [c["name"] for c in case.conversation["turns"][0]["tools"]]
    assert "lookup_order" in names
    assert not case.checks["tools@1"]["passed"]  # TestModel's order id is not A-1


def test_selection_and_usage_errors(shop: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no case matches"):
        asyncio.run(run_eval(shop, tags=["nope"]))
    with pytest.raises(UserError, match="only known while glm-agent eval runs"):
        current_case()
    (tmp_path / "lonely.yaml").write_text(
        textwrap.dedent(
            """\
            name: lonely
            cases: [{id: a, user: {scenario: hi}}]
            """
        )
    )
    with pytest.raises(UserError, match="give --agent"):
        asyncio.run(run_eval(tmp_path / "lonely.yaml"))
    with pytest.raises(UserError, match="--user-model"):
        asyncio.run(run_eval(tmp_path / "lonely.yaml", agent=tmp_path / "agent.yaml"))
