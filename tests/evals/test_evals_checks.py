"""The checks on hand-made conversations: each passes and fails for the right reason."""

from __future__ import annotations

from typing import Any

from glm_agent.evals import CaseSpec, Conversation, Passage, Reply, ToolUse, TurnResult
from glm_agent.evals._checks import expectation_checks, policy_violations, reward
from glm_agent.evals._dataset import PolicyRule
from glm_agent.evals._text import contains_output, grounding


def case(**fields: Any) -> CaseSpec:
    return CaseSpec.model_validate({"id": "c", "turns": ["hi"], **fields})


def checks(spec: CaseSpec, conv: Conversation) -> dict[str, Any]:
    return {c.name: c for c in expectation_checks(spec, conv)}


def conversation(*turns: TurnResult, state: dict[str, Any] | None = None) -> Conversation:
    return Conversation("c", list(turns), state=state)


LOOKUP = ToolUse("lookup_order", {"order_id": "SO10001", "verbose": True}, "ok", "{}")
CANCEL = ToolUse("cancel_order", {"order_id": "SO10001"}, "ok", "{}")


def test_tools_in_order_with_some_arguments() -> None:
    conv = conversation(TurnResult("x", tools=[LOOKUP, CANCEL]))
    ok = checks(
        case(
            expect={
                "tools": [
                    {"name": "lookup_order", "args": {"order_id": "so10001"}},
                    {"name": "cancel_order"},
                ]
            }
        ),
        conv,
    )
    assert ok["tools"].passed
    wrong_order = checks(
        case(expect={"tools": [{"name": "cancel_order"}, {"name": "lookup_order"}]}), conv
    )
    assert not wrong_order["tools"].passed
    assert "no call lookup_order() in order" in wrong_order["tools"].reason
    wrong_arg = checks(
        case(expect={"tools": [{"name": "lookup_order", "args": {"order_id": "SO2"}}]}), conv
    )
    assert (
        not wrong_arg["tools"].passed
        and "lookup_order(order_id='SO10001'" in wrong_arg["tools"].reason
    )
    invalid = conversation(
        TurnResult("x", tools=[ToolUse("lookup_order", {}, "invalid_arguments", "")])
    )
    assert not checks(case(expect={"tools": [{"name": "lookup_order"}]}), invalid)["tools"].passed
    assert checks(case(expect={"no_tools": True}), invalid)["no_tools"].passed
    assert not checks(case(expect={"no_tools": True}), conv)["no_tools"].passed


def test_text_handoff_and_curated() -> None:
    conv = conversation(
        TurnResult("a", replies=[Reply("Shipping is FREE over 99 yuan.", "curated", curated_id=1)]),
        TurnResult(
            "b",
            replies=[Reply("Connecting you.", "system")],
            handoff=True,
            handoff_trigger="customer_request",
        ),
    )
    c = checks(
        case(
            turns=["a", {"text": "b", "expect": {"handoff": True, "curated": False}}],
            expect={
                "contains": ["free over 99"],
                "not_contains": ["refund"],
                "matches": r"\d+ yuan",
                "curated": True,
            },
        ),
        conv,
    )
    assert c["contains"].passed and c["not_contains"].passed and c["matches"].passed
    assert not c["curated"].passed and c["curated"].reason == "curated answer in 1 of 2 turn(s)"
    assert c["handoff@2"].passed and c["curated@2"].passed
    missing = checks(case(expect={"contains": ["refund"]}), conv)["contains"]
    assert not missing.passed and missing.reason.startswith("lacks 'refund'")


def test_turns_not_sent_fail_their_checks() -> None:
    conv = conversation(TurnResult("a", handoff=True))
    conv.ended, conv.skipped_turns = "handoff", 1
    c = checks(
        case(turns=["a", {"text": "b", "expect": {"contains": ["x"], "handoff": False}}]), conv
    )
    assert not c["contains@2"].passed and not c["handoff@2"].passed
    assert "ended after turn 1 (handoff)" in c["contains@2"].reason
    assert c["completed"].passed


def test_citations_and_grounding() -> None:
    passages = [
        Passage(1, "warranty.pdf", "Cast iron pots carry a five-year warranty against cracks."),
        Passage(2, "faq.md", "Shipping is free over 99 yuan."),
    ]
    grounded = Reply(
        "Cast iron pots carry a five-year warranty [1]",
        "model",
        [{"n": 1, "source": "warranty.pdf"}],
    )
    made_up = Reply(
        "Pots have a lifetime guarantee and free engraving [2]",
        "model",
        [{"n": 2, "source": "faq.md"}],
    )
    good = checks(
        case(expect={"cites": ["warranty.pdf"], "grounded": True}),
        conversation(TurnResult("q", [grounded], passages=passages)),
    )
    assert good["cites"].passed and good["grounded"].passed and good["grounded"].score == 1.0
    bad = checks(
        case(expect={"cites": ["warranty.pdf"], "grounded": True}),
        conversation(TurnResult("q", [made_up], passages=passages)),
    )
    assert not bad["cites"].passed and "missing ['warranty.pdf']" in bad["cites"].reason
    assert (
        not bad["grounded"].passed
        and bad["grounded"].score is not None
        and bad["grounded"].score < 0.5
    )
    uncited = checks(
        case(expect={"cites": []}), conversation(TurnResult("q", [Reply("no idea", "model")]))
    )
    assert not uncited["cites"].passed
    assert grounding("五年质保", ["铸铁锅享受五年质保"]) == 1.0
    assert grounding("", ["x"]) == 0.0


def test_required_outputs_follow_tau2() -> None:
    assert contains_output("The total is 1,126.04 dollars", "1126.04")
    assert contains_output("TEN options", "ten")
    conv = conversation(
        TurnResult(
            "q",
            [
                Reply("Please confirm: refund 54.04", "system"),
                Reply("There are 10 options.", "model"),
            ],
        )
    )
    c = checks(case(expect={"outputs": ["10", "54.04"]}), conv)
    # Only the model's own words count: the bot's confirmation request does not tell 54.04.
    assert not c["outputs"].passed and c["outputs"].reason == "never told '54.04'"


def test_state_by_dotted_paths() -> None:
    conv = conversation(
        TurnResult("q"), state={"orders": {"SO1": {"status": "cancelled"}}, "tickets": 0}
    )
    assert checks(case(expect={"state": {"orders.SO1.status": "cancelled", "tickets": 0}}), conv)[
        "state"
    ].passed
    c = checks(case(expect={"state": {"orders.SO1.status": "pending", "orders.SO9": 1}}), conv)[
        "state"
    ]
    assert (
        not c.passed
        and c.reason == "orders.SO1.status: 'cancelled', not 'pending'; orders.SO9: missing"
    )
    no_env = checks(case(expect={"state": {"a": 1}}), conversation(TurnResult("q")))["state"]
    assert not no_env.passed and "no environment" in no_env.reason


def rule(**fields: Any) -> PolicyRule:
    return PolicyRule.model_validate(fields)


def test_policy_rules() -> None:
    unconfirmed = conversation(
        TurnResult("q", [Reply("Done, my number is 13812345678.", "model")], tools=[LOOKUP, CANCEL])
    )
    assert policy_violations([rule(confirm_before=["cancel_order"])], unconfirmed) == [
        "confirm_before: cancel_order(order_id='SO10001') ran without the customer's yes"
    ]
    confirmed = ToolUse("cancel_order", {"order_id": "SO10001"}, "ok", "{}", confirmed=True)
    assert (
        policy_violations(
            [rule(confirm_before=["cancel_order"])],
            conversation(TurnResult("q", tools=[confirmed])),
        )
        == []
    )
    who = rule(identify_before={"tools": ["cancel_order"], "by": ["find_user"]})
    failed_auth = ToolUse("find_user", {}, "error", "not found")
    ok_auth = ToolUse("find_user", {}, "ok", "u1")
    assert policy_violations([who], conversation(TurnResult("q", tools=[failed_auth, CANCEL])))
    held = ToolUse("cancel_order", {"order_id": "SO10001"}, "denied", "identity required")
    assert policy_violations([who], conversation(TurnResult("q", tools=[held]))) == []
    assert (
        policy_violations(
            [who], conversation(TurnResult("q", tools=[failed_auth, ok_auth, CANCEL]))
        )
        == []
    )
    assert policy_violations([rule(forbid_tools=["cancel_order"])], unconfirmed) == [
        "forbid_tools: cancel_order(order_id='SO10001')"
    ]
    assert policy_violations([rule(max_tool_calls=1)], unconfirmed) == [
        "max_tool_calls: 2 calls, over 1"
    ]
    assert policy_violations([rule(never_say=["MY NUMBER"])], unconfirmed) == [
        "never_say: said 'MY NUMBER'"
    ]
    assert policy_violations([rule(no_pii=True)], unconfirmed) == [
        "no_pii: an unmasked phone in a reply"
    ]
    masked = conversation(TurnResult("q", [Reply("my number is 138****5678", "model")]))
    assert policy_violations([rule(no_pii=True)], masked) == []


def test_reward_is_all_or_nothing_over_its_basis() -> None:
    passed = {"state": True, "outputs@2": True, "contains": False, "completed": True}
    assert reward(["state", "outputs"], passed, 0) == 1.0
    assert reward(["state", "outputs", "contains"], passed, 0) == 0.0
    assert reward(["state", "policy"], passed, 1) == 0.0
    assert reward(["state"], {**passed, "completed": False}, 0) == 0.0
