"""Tools from functions: schemas, docstrings, validation, registries."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from glm_agent import RunContext, ToolRegistry, tool
from glm_agent.exceptions import (
    DuplicateToolError,
    ToolArgumentsError,
    ToolDefinitionError,
    UnknownToolError,
)
from glm_agent.tools import Tool, function_tool


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    """A postal address."""

    city: str
    zip_code: str | None = None


class Order(BaseModel):
    items: list[str]
    address: Address


def _place(
    order: Order,
    color: Color,
    speed: Literal["fast", "slow"] = "slow",
    note: str | None = None,
    tags: dict[str, int] | None = None,
) -> str:
    """Place an order.

    Longer text about ordering.

    Args:
        order: The order to place.
        color: Wrapping colour.
        speed: Delivery speed.
        note: A note for the courier.
        tags: Counters by tag.
    """
    return f"{order.address.city}:{color.value}:{speed}"


def test_schema_from_hints_and_docstring() -> None:
    t = function_tool(_place)
    schema = t.definition.parameters
    assert t.definition.description == "Place an order.\n\nLonger text about ordering."
    assert schema["required"] == ["order", "color"]
    props = schema["properties"]
    assert props["order"]["description"] == "The order to place."
    # nested models are inlined, not left as $ref
    assert props["order"]["properties"]["address"]["properties"]["city"] == {"type": "string"}
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["speed"]["enum"] == ["fast", "slow"]
    assert {"type": "null"} in props["note"]["anyOf"]
    assert props["tags"]["anyOf"][0]["additionalProperties"] == {"type": "integer"}
    assert "$defs" not in schema and "title" not in props["order"]
    jsonschema.Draft202012Validator.check_schema(schema)


def test_validation_coerces_and_builds_models() -> None:
    t = function_tool(_place)
    args = {"order": {"items": ["a"], "address": {"city": "Hangzhou"}}, "color": "blue"}
    kwargs = t.validate(args)
    assert isinstance(kwargs["order"], Order)
    assert kwargs["color"] is Color.BLUE
    assert asyncio.run(t.run(args)) == "Hangzhou:blue:slow"


def test_validation_errors_name_each_argument() -> None:
    t = function_tool(_place)
    with pytest.raises(ToolArgumentsError) as info:
        t.validate({"order": {"items": "x"}, "color": "green", "bogus": 1})
    text = str(info.value)
    assert "order.items" in text
    assert "order.address" in text
    assert "color" in text
    assert "unexpected argument: 'bogus'" in text


def test_missing_parameter_description_is_an_error() -> None:
    def f(a: int, b: int) -> int:
        """Add.

        Args:
            a: First.
        """
        return a + b

    with pytest.raises(ToolDefinitionError, match=r"parameter.*b"):
        function_tool(f)


def test_annotated_field_description_counts_as_documented() -> None:
    def f(a: Annotated[int, Field(description="A number.", ge=0)]) -> int:
        """Echo."""
        return a

    t = function_tool(f)
    assert t.definition.parameters["properties"]["a"]["minimum"] == 0
    with pytest.raises(ToolArgumentsError, match="greater than or equal"):
        t.validate({"a": -1})


def test_missing_type_hint_and_docstring_are_errors() -> None:
    def no_hint(a):  # type: ignore[no-untyped-def]
        """X.

        Args:
            a: A.
        """

    def no_doc(a: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match="no type hint"):
        function_tool(no_hint)
    with pytest.raises(ToolDefinitionError, match="no description"):
        function_tool(no_doc)


def test_run_context_is_injected_and_hidden() -> None:
    seen = {}

    @tool
    async def who(ctx: RunContext[dict[str, str]], greeting: str) -> str:
        """Greet the customer.

        Args:
            greeting: The greeting word.
        """
        seen["session"] = ctx.session_id
        return f"{greeting} {ctx.deps['name']}"

    assert list(who.definition.parameters["properties"]) == ["greeting"]
    ctx = RunContext(deps={"name": "Li"}, session_id="s1")
    assert asyncio.run(who.run({"greeting": "hi"}, ctx)) == "hi Li"
    assert seen["session"] == "s1"


def test_decorator_options_become_policy_and_tool_stays_callable() -> None:
    @tool(name="cancel", timeout=5, requires_approval=True, redact=["card"])
    def cancel_order(order_id: str, card: str) -> str:
        """Cancel.

        Args:
            order_id: Order.
            card: Card number.
        """
        return order_id

    assert isinstance(cancel_order, Tool)
    assert cancel_order.name == "cancel"
    assert cancel_order.policy.requires_approval and cancel_order.policy.timeout == 5
    assert cancel_order.redacted({"order_id": "A", "card": "6222"}) == {
        "order_id": "A",
        "card": "***",
    }
    assert cancel_order("A1", "x") == "A1"


def test_registry_duplicates_and_did_you_mean() -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather.

        Args:
            city: City.
        """
        return city

    reg = ToolRegistry([get_weather])
    with pytest.raises(DuplicateToolError, match="get_weather"):
        reg.add(get_weather)
    with pytest.raises(UnknownToolError) as info:
        reg.get("get_wether")
    assert "did you mean 'get_weather'" in str(info.value)
    assert "tools: get_weather" in str(info.value)
    assert reg.definitions()[0].name == "get_weather"


def test_registries_are_independent_objects() -> None:
    a, b = ToolRegistry(), ToolRegistry()

    @a.register
    def ping() -> str:
        """Ping."""
        return "pong"

    assert "ping" in a and "ping" not in b and len(b) == 0
