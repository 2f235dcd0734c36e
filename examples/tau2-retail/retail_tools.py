"""The tau2-bench retail domain's 16 tools, written from its behavioural specification.

The database is the raw JSON dict of `db.json` (kept in the raw shape: optional order keys are
absent until a tool writes them), handed to every tool as `RunContext.deps` (a `RetailDB`).
Runs without deps (a served agent) share one copy loaded from `$TAU2_RETAIL_DB`.
A failing tool raises `ModelRetry("Error: <message>")`: the text tau2 shows the model.
Money is plain binary64 arithmetic in the specified order; `round(x, 2)` where specified.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from glm_agent import ModelRetry, RunContext

ORDER_FIELDS = (
    "order_id",
    "user_id",
    "address",
    "items",
    "status",
    "fulfillments",
    "payment_history",
)
ORDER_OPTIONAL = (
    "cancel_reason",
    "exchange_items",
    "exchange_new_items",
    "exchange_payment_method_id",
    "exchange_price_difference",
    "return_items",
    "return_payment_method_id",
)
ADDRESS_FIELDS = ("address1", "address2", "city", "country", "state", "zip")
PAYMENT_FIELDS = {
    "credit_card": ("source", "id", "brand", "last_four"),
    "gift_card": ("source", "id", "balance"),
    "paypal": ("source", "id"),
}
CANCEL_REASONS = ("no longer needed", "ordered by mistake")


class RetailDB:
    """The retail database: products, users and orders, as loaded from `db.json`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.products: dict[str, Any] = data["products"]
        self.users: dict[str, Any] = data["users"]
        self.orders: dict[str, Any] = data["orders"]

    @classmethod
    def load(cls, path: str | Path) -> RetailDB:
        """A fresh database from a `db.json` file."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def copy(self) -> RetailDB:
        """An independent deep copy."""
        return RetailDB(copy.deepcopy(self.data))

    def canonical_hash(self) -> str:
        """SHA-256 of the canonical JSON (sorted keys, compact, raw UTF-8) of the raw-shape DB."""
        text = json.dumps(self.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # --- lookups (TOOLS.md §3) --------------------------------------------------------------

    def order(self, order_id: str) -> dict[str, Any]:
        if order_id not in self.orders:
            raise _error("Order not found")
        return self.orders[order_id]  # type: ignore[no-any-return]

    def user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self.users:
            raise _error("User not found")
        return self.users[user_id]  # type: ignore[no-any-return]

    def product(self, product_id: str) -> dict[str, Any]:
        if product_id not in self.products:
            raise _error("Product not found")
        return self.products[product_id]  # type: ignore[no-any-return]

    def variant(self, product_id: str, item_id: str) -> dict[str, Any]:
        variants = self.product(product_id)["variants"]
        if item_id not in variants:
            raise _error("Variant not found")
        return variants[item_id]  # type: ignore[no-any-return]

    def payment_method(self, user_id: str, method_id: str) -> dict[str, Any]:
        methods = self.user(user_id)["payment_methods"]
        if method_id not in methods:
            raise _error("Payment method not found")
        return methods[method_id]  # type: ignore[no-any-return]


_DEFAULT_DB: RetailDB | None = None


def _db(ctx: RunContext[Any]) -> RetailDB:
    """The run's database (`deps`), else one process-wide copy loaded from `$TAU2_RETAIL_DB` or
    the domain's `db.json` in ../shared (how a served agent, which has no deps, gets one)."""
    global _DEFAULT_DB
    if isinstance(ctx.deps, RetailDB):
        return ctx.deps
    if _DEFAULT_DB is None:
        default = Path(__file__).resolve().parents[3] / "shared/data/tau2-retail/db.json"
        _DEFAULT_DB = RetailDB.load(os.environ.get("TAU2_RETAIL_DB", default))
    return _DEFAULT_DB


def _error(message: str) -> ModelRetry:
    return ModelRetry(f"Error: {message}")


# --- serialisation of records (TOOLS.md §2) ----------------------------------------------------


def _address(a: dict[str, Any]) -> dict[str, Any]:
    return {k: a[k] for k in ADDRESS_FIELDS}


def _order_record(o: dict[str, Any]) -> dict[str, Any]:
    out = {k: o[k] for k in ORDER_FIELDS}
    out["address"] = _address(o["address"])
    out["items"] = [
        {k: i[k] for k in ("name", "product_id", "item_id", "price", "options")} for i in o["items"]
    ]
    out["fulfillments"] = [
        {k: f[k] for k in ("tracking_id", "item_ids")} for f in o["fulfillments"]
    ]
    out["payment_history"] = [
        {k: p[k] for k in ("transaction_type", "amount", "payment_method_id")}
        for p in o["payment_history"]
    ]
    for k in ORDER_OPTIONAL:
        out[k] = o.get(k)
    return out


def _user_record(u: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": u["user_id"],
        "name": {"first_name": u["name"]["first_name"], "last_name": u["name"]["last_name"]},
        "address": _address(u["address"]),
        "email": u["email"],
        "payment_methods": {
            mid: {k: m[k] for k in PAYMENT_FIELDS[m["source"]]}
            for mid, m in u["payment_methods"].items()
        },
        "orders": u["orders"],
    }


def _variant_record(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v[k] for k in ("item_id", "options", "available", "price")}


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record)


def _count_check(order: dict[str, Any], item_ids: list[str], message: str) -> None:
    have = Counter(i["item_id"] for i in order["items"])
    want = Counter(item_ids)
    for item_id in item_ids:
        if want[item_id] > have[item_id]:
            raise _error(message.format(id=item_id))


def _first_item(order: dict[str, Any], item_id: str) -> dict[str, Any]:
    for item in order["items"]:
        if item["item_id"] == item_id:
            return item  # type: ignore[no-any-return]
    raise _error(f"Item {item_id} not found")


# --- the tools (TOOLS.md §5, in the toolkit's order) ---------------------------------------------


def calculate(expression: str) -> str:
    """Calculate the result of an arithmetic expression.

    Args:
        expression: Numbers, + - * /, parentheses and spaces, such as '2 + 2'.
    """
    if not all(c in "0123456789+-*/(). " for c in expression):
        raise _error("Invalid characters in expression")
    try:
        # Only digits, operators, dots, spaces and parentheses can reach eval (checked above).
        value = eval(expression, {"__builtins__": {}}, {})
    except Exception as e:
        raise _error(str(e)) from None
    return str(round(float(value), 2))


def cancel_pending_order(ctx: RunContext[RetailDB], order_id: str, reason: str) -> str:
    """Cancel a pending order and refund its payments.

    Args:
        order_id: The order id, such as '#W0000000' (with the '#').
        reason: 'no longer needed' or 'ordered by mistake'.
    """
    db = _db(ctx)
    order = db.order(order_id)
    if order["status"] != "pending":
        raise _error("Non-pending order cannot be cancelled")
    if reason not in CANCEL_REASONS:
        raise _error("Invalid reason")
    refunds = []
    for payment in order["payment_history"]:
        method = db.payment_method(order["user_id"], payment["payment_method_id"])
        refunds.append(
            {
                "transaction_type": "refund",
                "amount": payment["amount"],
                "payment_method_id": payment["payment_method_id"],
            }
        )
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] + payment["amount"], 2)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return _dump(_order_record(order))


def _price_difference(
    db: RetailDB,
    order: dict[str, Any],
    item_ids: list[str],
    new_item_ids: list[str],
    *,
    reject_same: bool,
) -> tuple[float | int, dict[str, Any] | None]:
    diff: float | int = 0
    last: dict[str, Any] | None = None
    for old, new in zip(item_ids, new_item_ids, strict=True):
        if reject_same and old == new:
            raise _error("The new item id should be different from the old item id")
        item = _first_item(order, old)
        variant = db.variant(item["product_id"], new)
        if not variant["available"]:
            raise _error(f"New item {new} not found or available")
        diff += variant["price"] - item["price"]
        last = variant
    return diff, last


def exchange_delivered_order_items(
    ctx: RunContext[RetailDB],
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> str:
    """Exchange items of a delivered order for other variants of the same products.

    Args:
        order_id: The order id, such as '#W0000000'.
        item_ids: Item ids in the order to exchange (repeats allowed).
        new_item_ids: The replacement item ids, matched by position.
        payment_method_id: The payment method that pays or receives the price difference.
    """
    db = _db(ctx)
    order = db.order(order_id)
    if order["status"] != "delivered":
        raise _error("Non-delivered order cannot be exchanged")
    _count_check(order, item_ids, "Number of {id} not found.")
    if len(item_ids) != len(new_item_ids):
        raise _error("The number of items to be exchanged should match.")
    difference, _ = _price_difference(db, order, item_ids, new_item_ids, reject_same=False)
    diff = round(difference, 2)
    method = db.payment_method(order["user_id"], payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise _error("Insufficient gift card balance to pay for the price difference")
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff
    return _dump(_order_record(order))


def find_user_id_by_name_zip(
    ctx: RunContext[RetailDB], first_name: str, last_name: str, zip: str
) -> str:
    """Find a user id by first name, last name and zip code.

    Args:
        first_name: First name (any case).
        last_name: Last name (any case).
        zip: Zip code, such as '12345'.
    """
    for user in _db(ctx).users.values():
        name = user["name"]
        if (
            name["first_name"].lower() == first_name.lower()
            and name["last_name"].lower() == last_name.lower()
            and user["address"]["zip"] == zip
        ):
            return str(user["user_id"])
    raise _error("User not found")


def find_user_id_by_email(ctx: RunContext[RetailDB], email: str) -> str:
    """Find a user id by e-mail address.

    Args:
        email: The e-mail address (any case).
    """
    for user in _db(ctx).users.values():
        if user["email"].lower() == email.lower():
            return str(user["user_id"])
    raise _error("User not found")


def get_order_details(ctx: RunContext[RetailDB], order_id: str) -> str:
    """Get the status and details of an order.

    Args:
        order_id: The order id, such as '#W0000000'.
    """
    return _dump(_order_record(_db(ctx).order(order_id)))


def get_product_details(ctx: RunContext[RetailDB], product_id: str) -> str:
    """Get a product's details with all its variants.

    Args:
        product_id: The product id (not an item id).
    """
    p = _db(ctx).product(product_id)
    return _dump(
        {
            "name": p["name"],
            "product_id": p["product_id"],
            "variants": {k: _variant_record(v) for k, v in p["variants"].items()},
        }
    )


def get_item_details(ctx: RunContext[RetailDB], item_id: str) -> str:
    """Get one item (a product variant) by its item id.

    Args:
        item_id: The item id.
    """
    for product in _db(ctx).products.values():
        if item_id in product["variants"]:
            return _dump(_variant_record(product["variants"][item_id]))
    raise _error("Item not found")


def get_user_details(ctx: RunContext[RetailDB], user_id: str) -> str:
    """Get a user's profile, payment methods and order ids.

    Args:
        user_id: The user id, such as 'sara_doe_496'.
    """
    return _dump(_user_record(_db(ctx).user(user_id)))


def list_all_product_types(ctx: RunContext[RetailDB]) -> str:
    """List the name and product id of every product type."""
    names = {p["name"]: p["product_id"] for p in _db(ctx).products.values()}
    return json.dumps(names, sort_keys=True)


def modify_pending_order_address(
    ctx: RunContext[RetailDB],
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> str:
    """Change the shipping address of a pending order.

    Args:
        order_id: The order id, such as '#W0000000'.
        address1: First address line.
        address2: Second address line (may be empty).
        city: City.
        state: State, such as 'CA'.
        country: Country, such as 'USA'.
        zip: Zip code.
    """
    order = _db(ctx).order(order_id)
    if "pending" not in order["status"]:
        raise _error("Non-pending order cannot be modified")
    order["address"] = {
        "address1": address1,
        "address2": address2,
        "city": city,
        "country": country,
        "state": state,
        "zip": zip,
    }
    return _dump(_order_record(order))


def modify_pending_order_items(
    ctx: RunContext[RetailDB],
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> str:
    """Change items of a pending order to other variants of the same products.

    Args:
        order_id: The order id, such as '#W0000000'.
        item_ids: Item ids in the order to change (repeats allowed).
        new_item_ids: The new item ids, matched by position.
        payment_method_id: The payment method that pays or receives the price difference.
    """
    db = _db(ctx)
    order = db.order(order_id)
    if order["status"] != "pending":
        raise _error("Non-pending order cannot be modified")
    _count_check(order, item_ids, "{id} not found")
    if len(item_ids) != len(new_item_ids):
        raise _error("The number of items to be exchanged should match")
    diff, last = _price_difference(db, order, item_ids, new_item_ids, reject_same=True)
    method = db.payment_method(order["user_id"], payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise _error("Insufficient gift card balance to pay for the new item")
    order["payment_history"].append(
        {
            "transaction_type": "payment" if diff > 0 else "refund",
            "amount": float(abs(diff)),
            "payment_method_id": payment_method_id,
        }
    )
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] - diff, 2)
    for old, new in zip(item_ids, new_item_ids, strict=True):
        item = _first_item(order, old)
        item["item_id"] = new
        assert last is not None
        # tau2's behaviour, reproduced on purpose: every changed item takes the price and
        # options of the last pair's new variant.
        item["price"] = last["price"]
        item["options"] = last["options"]
    order["status"] = "pending (item modified)"
    return _dump(_order_record(order))


def modify_pending_order_payment(
    ctx: RunContext[RetailDB], order_id: str, payment_method_id: str
) -> str:
    """Pay a pending order with another payment method.

    Args:
        order_id: The order id, such as '#W0000000'.
        payment_method_id: The new payment method id.
    """
    db = _db(ctx)
    order = db.order(order_id)
    if "pending" not in order["status"]:
        raise _error("Non-pending order cannot be modified")
    method = db.payment_method(order["user_id"], payment_method_id)
    history = order["payment_history"]
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        raise _error("There should be exactly one payment for a pending order")
    old_id = history[0]["payment_method_id"]
    if old_id == payment_method_id:
        raise _error("The new payment method should be different from the current one")
    amount = history[0]["amount"]
    if method["source"] == "gift_card" and method["balance"] < amount:
        raise _error("Insufficient gift card balance to pay for the order")
    history.append(
        {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id}
    )
    history.append({"transaction_type": "refund", "amount": amount, "payment_method_id": old_id})
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] - amount, 2)
    old = db.payment_method(order["user_id"], old_id)
    if old["source"] == "gift_card":
        old["balance"] = round(old["balance"] + amount, 2)
    return _dump(_order_record(order))


def modify_user_address(
    ctx: RunContext[RetailDB],
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> str:
    """Change a user's default address.

    Args:
        user_id: The user id, such as 'sara_doe_496'.
        address1: First address line.
        address2: Second address line (may be empty).
        city: City.
        state: State, such as 'CA'.
        country: Country, such as 'USA'.
        zip: Zip code.
    """
    user = _db(ctx).user(user_id)
    user["address"] = {
        "address1": address1,
        "address2": address2,
        "city": city,
        "country": country,
        "state": state,
        "zip": zip,
    }
    return _dump(_user_record(user))


def return_delivered_order_items(
    ctx: RunContext[RetailDB], order_id: str, item_ids: list[str], payment_method_id: str
) -> str:
    """Request the return of items of a delivered order.

    Args:
        order_id: The order id, such as '#W0000000'.
        item_ids: Item ids in the order to return (repeats allowed).
        payment_method_id: Where the refund goes: the original method or a gift card.
    """
    db = _db(ctx)
    order = db.order(order_id)
    if order["status"] != "delivered":
        raise _error("Non-delivered order cannot be returned")
    db.user(order["user_id"])
    method = db.payment_method(order["user_id"], payment_method_id)
    if (
        method["source"] != "gift_card"
        and payment_method_id != order["payment_history"][0]["payment_method_id"]
    ):
        raise _error("Payment method should be the original payment method")
    _count_check(order, item_ids, "Some item not found")
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return _dump(_order_record(order))


def transfer_to_human_agents(summary: str) -> str:
    """Hand the conversation to a human agent, with a summary of the customer's issue.

    Args:
        summary: What the customer needs and what was done so far.
    """
    return "Transfer successful"
