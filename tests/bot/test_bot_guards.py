"""Redaction, curated matching, handoff triggers, confirmations, passwords, the offline model."""

from __future__ import annotations

import json

import pytest

from glm_agent.messages import (
    AssistantMessage,
    SystemMessage,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from glm_agent.models import AgentInfo
from glm_agent.serving.bot import (
    CuratedAnswer,
    CuratedMatcher,
    HandoffConfig,
    Redactor,
    detect_handoff,
    extractive_summary,
    hash_password,
    id_card_valid,
    luhn_valid,
    offline_model,
    verify_password,
)
from glm_agent.serving.bot.handoff import is_confirmation

ID = "11010519491231002X"  # the sample number of GB 11643


def test_validators() -> None:
    assert id_card_valid(ID) and id_card_valid(ID.lower())
    assert not id_card_valid("110105194912310021")  # wrong check character
    assert luhn_valid("4111 1111 1111 1111") and luhn_valid("5500-0000-0000-0004")
    assert not luhn_valid("4111111111111112") and not luhn_valid("1234")


def test_redaction_kinds_and_styles() -> None:
    text = (
        f"身份证{ID}，手机13812345678，卡号 4111 1111 1111 1111，邮箱 li.wei@example.com，"
        "订单 SO10001 金额 2000000000000 元"
    )
    out = Redactor().redact(text)
    assert ID not in out and "110105********002X" in out
    assert "138****5678" in out and "4111********1111" in out and "l***@example.com" in out
    # Not PII: an order id, and a long number that fails the Luhn check stays.
    assert "SO10001" in out and "2000000000000" in out
    labels = Redactor(style="label").redact(text)
    assert "[ID_CARD]" in labels and "[PHONE]" in labels and "[BANK_CARD]" in labels
    assert "[EMAIL]" in labels
    masked = Redactor(kinds=["phone"], style="mask").redact("call +86 138 1234 5678 now")
    assert masked == "call *** *** **** **** now"
    only_email = Redactor(kinds=["email"]).redact(text)
    assert "13812345678" in only_email and "li.wei@" not in only_email
    fields = Redactor(kinds=["phone"], fields={"export": ["phone", "email"]})
    assert "li.wei@" in fields.redact(text) and "li.wei@" not in fields.redact(text, "export")
    assert Redactor().redact("bad id 110105194912310021") == "bad id 110105194912310021"
    with pytest.raises(ValueError, match="kinds: id_card"):
        Redactor(kinds=["passport"])


def test_curated_matching_bilingual() -> None:
    m = CuratedMatcher(
        [
            CuratedAnswer(1, "运费怎么算？", "满99包邮", ["包邮吗", "运费多少"]),
            CuratedAnswer(2, "How much is shipping?", "Free over 99", ["delivery fee"]),
            CuratedAnswer(3, "How do I cancel my order?", "In the chat", []),
        ]
    )
    hit = m.match("请问运费怎么算")
    assert hit is not None and hit.answer.id == 1 and hit.score > 0.72
    hit = m.match("HOW MUCH is shipping!!")
    assert hit is not None and hit.answer.id == 2 and hit.score > 0.95
    hit = m.match("how do I cancel my subscription")
    assert hit is not None and hit.score < 0.72
    miss = m.match("我的订单在哪里")
    assert miss is None or miss.score < 0.3
    assert CuratedMatcher().match("hi") is None


def test_handoff_triggers() -> None:
    cfg = HandoffConfig()
    assert detect_handoff("转人工", cfg).trigger == "customer_request"  # type: ignore[union-attr]
    assert detect_handoff("I want a human", cfg).trigger == "customer_request"  # type: ignore[union-attr]
    assert detect_handoff("Agent!", cfg) is not None
    # Word boundaries: not "agents' fees", "reagent", "humane".
    assert detect_handoff("what are your agents' fees", cfg) is None
    assert detect_handoff("is the reagent safe", cfg) is None
    assert detect_handoff("humane packaging?", cfg) is None
    assert detect_handoff("我要投诉", cfg).trigger == "sensitive_topic"  # type: ignore[union-attr]
    assert detect_handoff("my lawyer will call", cfg).trigger == "sensitive_topic"  # type: ignore[union-attr]
    # Money rules read the order's facts (a tool policy rule), never digits in the message: an
    # order number is not an amount, and a big refund is caught whatever the customer writes.
    assert detect_handoff("refund 2500 yuan for SO10001", cfg) is None
    assert detect_handoff("退款 SO10055", cfg) is None
    with pytest.raises(ValueError, match=r"facts\.total > 2000, then: review"):
        HandoffConfig(refund_over=2000)


def test_confirmation_words() -> None:
    words = ["yes", "确认", "是的"]
    assert is_confirmation("Yes!", words) and is_confirmation(" 确认。", words)
    assert not is_confirmation("yes but change the size", words)
    assert not is_confirmation("不", words)


def test_extractive_summary() -> None:
    pairs = [
        ("bot", "hi"),
        ("customer", "my order SO10001 is broken"),
        ("bot", "sorry"),
        ("customer", "I want a person"),
    ]
    text = extractive_summary(pairs, "customer asked")
    assert "SO10001" in text and "customer asked" in text and "I want a person" in text


def test_passwords() -> None:
    stored = hash_password("pw")
    assert stored.startswith("scrypt$") and verify_password("pw", stored)
    assert not verify_password("pW", stored)
    assert hash_password("pw") != stored  # salted
    with pytest.raises(ValueError, match="kinds: scrypt"):
        verify_password("pw", "md5$00")


TEMPLATES = {
    "lookup_order": {
        "done": {
            "zh": "订单 {order_id} 的状态是「{status}」。",
            "en": "Order {order_id} is {status}.",
        },
        "label.pending": {"zh": "待发货", "en": "pending"},
    }
}


def _tools(*names: str) -> AgentInfo:
    return AgentInfo(
        [
            ToolDefinition(
                name=n,
                description=n,
                parameters={"type": "object"},
                templates=TEMPLATES.get(n, {}),
            )
            for n in names
        ]
    )


def test_offline_model_rules() -> None:
    info = _tools("lookup_order", "cancel_order", "change_address", "lookup_product")
    reply = offline_model.reply
    call = reply([UserMessage(content="where is so10001?")], info)
    assert isinstance(call, AssistantMessage)
    assert (call.tool_calls[0].name, call.tool_calls[0].args_dict()) == (
        "lookup_order",
        {"order_id": "SO10001"},
    )
    call = reply([UserMessage(content="请取消订单 SO10002")], info)
    assert isinstance(call, AssistantMessage) and call.tool_calls[0].name == "cancel_order"
    call = reply([UserMessage(content="change address of SO10002 to 1 Bund Road, Shanghai")], info)
    assert isinstance(call, AssistantMessage)
    assert call.tool_calls[0].args_dict()["new_address"] == "1 Bund Road, Shanghai"
    call = reply([UserMessage(content="price of P-1003?")], info)
    assert isinstance(call, AssistantMessage) and call.tool_calls[0].name == "lookup_product"
    # Not offered: no call.
    assert reply([UserMessage(content="cancel SO10002")], _tools()) == ""
    result = ToolMessage(
        content=json.dumps({"order_id": "SO10001", "status": "pending"}),
        tool_call_id="c1",
        name="lookup_order",
    )
    # One language per reply: the tool's template, its values translated by its labels.
    zh = reply([UserMessage(content="订单 SO10001"), result], info)
    assert zh == "订单 SO10001 的状态是「待发货」。"
    en = reply([UserMessage(content="order SO10001?"), result], info)
    assert en == "Order SO10001 is pending."
    # A message with no language of its own (an order number, a phone) keeps the conversation's.
    asked, verifying = UserMessage(content="where is my order?"), UserMessage(content="SO10001")
    assert reply([asked, verifying, result], info) == "Order SO10001 is pending."
    assert reply([verifying, result], info) == "订单 SO10001 的状态是「待发货」。"
    # A question about an order's delivery with its number is a lookup, not a policy question.
    asks = ("我的订单 SO10003 怎么还没到", "so10033 这个订单签收了吗", "was SO10004 delivered?")
    for text in asks:
        call = reply([UserMessage(content=text)], info)
        assert isinstance(call, AssistantMessage) and call.tool_calls[0].name == "lookup_order"
    ctx = SystemMessage(
        content="<context>\nx\n\n[1] FAQ (faq.md)\nShipping is free over 99 yuan.\n"
        "\n[2] Other (o.md)\nUnrelated text.\n</context>"
    )
    assert reply([ctx, UserMessage(content="is shipping free?")], _tools()) == (
        "Shipping is free over 99 yuan. [1]"
    )
    assert reply([ctx, UserMessage(content="tell me a joke about cats")], _tools()) == ""
