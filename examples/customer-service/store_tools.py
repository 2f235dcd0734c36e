"""The Bamboo Lane store's tools (registered in tools.yaml, where their policies are).

Who may do what is declared in tools.yaml and enforced by glm-agent's loop, not by these
functions and not by the model: `verify_customer` is the verification step (an order number plus
the mobile number or e-mail on the account); order tools need a verified customer and run only on
that customer's orders (`order_facts` tells the loop who owns an order and what it cost); large
returns go to a human. A business "no" is a `ToolRefused` with a code, which tools.yaml's
templates turn into a sentence in the customer's language.

The database is `.glm-agent/store.db` beside this file (created by seed.py on first use), or the
file named by the `CS_STORE_DB` environment variable.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import seed

from glm_agent.exceptions import ToolRefused
from glm_agent.tools import RunContext

RETURN_DAYS = 7
"""No-questions-asked returns within this many days of delivery (the policy's 七天无理由退货)."""
EXCHANGE_DAYS = 15
"""Exchanges within this many days of delivery."""
_lock = threading.Lock()


def _db() -> sqlite3.Connection:
    path = Path(os.environ.get("CS_STORE_DB") or seed.DEFAULT_PATH)
    with _lock:
        if not path.exists():
            seed.create(path)
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    return db


def _order(db: sqlite3.Connection, order_id: str) -> sqlite3.Row:
    row = db.execute("SELECT * FROM orders WHERE id=?", (order_id.strip().upper(),)).fetchone()
    if row is None:
        # Reached only for a verified customer's own orders (the loop checks ownership first),
        # so this is a typo: say so without hinting at other customers' orders.
        raise ToolRefused("no_such_order", "no order with that number", order_id=order_id)
    return row


def order_facts(order_id: str) -> dict[str, Any]:
    """Who owns an order and what it is worth: the facts tools.yaml's policies check.

    Args:
        order_id: The order number.
    """
    with _db() as db:
        row = db.execute(
            "SELECT customer_id, status, total, delivered_at FROM orders WHERE id=?",
            (order_id.strip().upper(),),
        ).fetchone()
    return {} if row is None else dict(row)


def verify_customer(order_id: str, contact: str) -> dict[str, Any]:
    """Verify who the customer is: an order number of theirs and the mobile number or e-mail
    address on their account. Needed before any order can be looked up or changed.

    Args:
        order_id: One of the customer's order numbers, e.g. SO10001.
        contact: The mobile number or e-mail address on the customer's account.
    """
    with _db() as db:
        row = db.execute(
            "SELECT c.id, c.name, c.phone, c.email FROM orders o JOIN customers c "
            "ON c.id = o.customer_id WHERE o.id=?",
            (order_id.strip().upper(),),
        ).fetchone()
    given = contact.strip().lower()
    if row is None or given not in (row["phone"], row["email"].lower()):
        # One answer for a wrong order number and a wrong contact: nothing to probe.
        raise ToolRefused("not_verified", "the order number and contact do not match")
    return {"customer_id": row["id"], "name": row["name"], "verified": True}


def my_orders(ctx: RunContext[Any]) -> dict[str, Any]:
    """The verified customer's orders: number, status and total of each.

    Args:
        ctx: The run (its verified customer).
    """
    assert ctx.identity is not None  # the policy lets this run only for a verified customer
    with _db() as db:
        rows = db.execute(
            "SELECT id, status, total FROM orders WHERE customer_id=? ORDER BY id",
            (ctx.identity.customer_id,),
        ).fetchall()
    return {"orders": [dict(r) for r in rows]}


def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up one of the verified customer's orders: status, items, total, address, dates.

    Args:
        order_id: The order number, e.g. SO10001.
    """
    with _db() as db:
        o = _order(db, order_id)
        items = [
            f"{r['name_zh']} / {r['name']} x{r['quantity']}"
            for r in db.execute(
                "SELECT p.name, p.name_zh, i.quantity FROM order_items i "
                "JOIN products p ON p.sku=i.sku WHERE i.order_id=?",
                (o["id"],),
            )
        ]
    out = {
        "order_id": o["id"],
        "status": o["status"],
        "items": items,
        "total": o["total"],
        "address": o["address"],
        "created_at": o["created_at"],
    }
    if o["delivered_at"]:
        out["delivered_at"] = o["delivered_at"]
    return out


def lookup_product(sku: str) -> dict[str, Any]:
    """Look up a product's name, price and stock (no verification needed).

    Args:
        sku: The product code, e.g. P-1001.
    """
    with _db() as db:
        row = db.execute("SELECT * FROM products WHERE sku=?", (sku.upper(),)).fetchone()
    if row is None:
        raise ToolRefused("no_such_product", "no product with that code", sku=sku)
    return {
        "sku": row["sku"],
        "name": row["name"],
        "name_zh": row["name_zh"],
        "price": row["price"],
        "stock": row["stock"],
    }


def _request(db: sqlite3.Connection, order_id: str, kind: str, detail: str) -> int:
    cur = db.execute(
        "INSERT INTO requests (order_id, kind, detail, created_at) VALUES (?,?,?,?)",
        (order_id, kind, detail, seed.TODAY.isoformat()),
    )
    return int(cur.lastrowid or 0)


def _within(delivered_at: str | None, days: int) -> bool:
    return delivered_at is not None and seed.TODAY - date.fromisoformat(delivered_at) <= timedelta(
        days=days
    )


def cancel_order(order_id: str) -> dict[str, Any]:
    """Cancel an order that has not shipped yet (status pending or processing).

    Args:
        order_id: The order number, e.g. SO10001.
    """
    with _db() as db:
        o = _order(db, order_id)
        if o["status"] not in ("pending", "processing"):
            raise ToolRefused(
                "cannot_cancel",
                "only pending or processing orders can be cancelled",
                order_id=o["id"],
                status=o["status"],
            )
        db.execute("UPDATE orders SET status='cancelled' WHERE id=?", (o["id"],))
    return {"order_id": o["id"], "status": "cancelled", "refund": o["total"]}


def return_order(order_id: str, reason: str) -> dict[str, Any]:
    """Start a return of a delivered order (within 7 days of delivery).

    Args:
        order_id: The order number, e.g. SO10001.
        reason: Why the customer returns it.
    """
    with _db() as db:
        o = _order(db, order_id)
        if o["status"] != "delivered" or not _within(o["delivered_at"], RETURN_DAYS):
            raise ToolRefused(
                "cannot_return",
                f"only delivered orders within {RETURN_DAYS} days of delivery can be returned",
                order_id=o["id"],
                status=o["status"],
                days=RETURN_DAYS,
            )
        rma = _request(db, o["id"], "return", reason)
        db.execute("UPDATE orders SET status='return_requested' WHERE id=?", (o["id"],))
    return {"order_id": o["id"], "status": "return_requested", "return_id": f"RMA{rma:05d}"}


def exchange_order(order_id: str, reason: str) -> dict[str, Any]:
    """Start an exchange of a delivered order (within 15 days of delivery).

    Args:
        order_id: The order number, e.g. SO10001.
        reason: What is wrong and what the customer wants instead.
    """
    with _db() as db:
        o = _order(db, order_id)
        if o["status"] != "delivered" or not _within(o["delivered_at"], EXCHANGE_DAYS):
            raise ToolRefused(
                "cannot_exchange",
                f"only delivered orders within {EXCHANGE_DAYS} days of delivery can be exchanged",
                order_id=o["id"],
                status=o["status"],
                days=EXCHANGE_DAYS,
            )
        rid = _request(db, o["id"], "exchange", reason)
        db.execute("UPDATE orders SET status='exchange_requested' WHERE id=?", (o["id"],))
    return {"order_id": o["id"], "status": "exchange_requested", "exchange_id": f"EX{rid:05d}"}


def change_address(order_id: str, new_address: str) -> dict[str, Any]:
    """Change the delivery address of an order that has not shipped yet.

    Args:
        order_id: The order number, e.g. SO10001.
        new_address: The full new delivery address.
    """
    with _db() as db:
        o = _order(db, order_id)
        if o["status"] not in ("pending", "processing"):
            raise ToolRefused(
                "cannot_change_address",
                "the address can only change before the order ships",
                order_id=o["id"],
                status=o["status"],
            )
        db.execute("UPDATE orders SET address=? WHERE id=?", (new_address, o["id"]))
    return {"order_id": o["id"], "address": new_address}


def create_ticket(subject: str, detail: str) -> dict[str, Any]:
    """Create a follow-up ticket for the back office (a problem the bot cannot solve now).

    Args:
        subject: One line saying what the ticket is about.
        detail: What the customer needs, with order numbers.
    """
    with _db() as db:
        cur = db.execute(
            "INSERT INTO tickets (subject, detail, created_at) VALUES (?,?,?)",
            (subject, detail, seed.TODAY.isoformat()),
        )
    return {"ticket_id": f"T{cur.lastrowid:05d}"}


def hand_off(reason: str) -> dict[str, Any]:
    """Transfer the conversation to a human agent (when the customer needs a person).

    Args:
        reason: Why a human should take over.
    """
    return {"reason": reason}
