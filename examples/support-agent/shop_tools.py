"""Tools of the support example: a tiny order system in memory."""

from typing import Annotated

from pydantic import Field

ORDERS = {
    "A-1042": {"status": "shipped", "carrier": "SF Express", "eta": "2026-11-25"},
    "A-1043": {"status": "processing", "carrier": None, "eta": None},
}


def order_status(
    order_id: Annotated[str, Field(examples=["A-1042"], pattern=r"^[A-Z]-\d{4}$")],
) -> dict[str, object]:
    """Look up an order.

    Args:
        order_id: The order number printed on the receipt.
    """
    order = ORDERS.get(order_id)
    if order is None:
        raise ValueError(f"no order {order_id!r}; known orders: {', '.join(ORDERS)}")
    return {"order_id": order_id, **order}


def refund_policy() -> str:
    """The shop's refund policy."""
    return "Refunds within 30 days of delivery, unused items, original packaging."
