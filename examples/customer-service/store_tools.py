"""The Bamboo Lane store's tools (registered in tools.yaml): look up customers, orders and
products; cancel, return, exchange, change the address; create a ticket; hand off to a human.

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
    row = db.execute("SELECT * FROM orders WHERE id=?", (order_id.upper(),)).fetchone()
    if row is None:
        raise ValueError(f"no order {order_id!r}; order numbers look like SO10001")
    return row


def lookup_customer(contact: str) -> dict[str, Any]:
    """Find a customer by e-mail address or mobile number, with their order numbers.

    Args:
        contact: The customer's e-mail address or 11-digit mobile number.
    """
    with _db() as db:
        row = db.execute(
            "SELECT * FROM customers WHERE email=? OR phone=?", (contact.lower(), contact)
        ).fetchone()
        if row is None:
            raise ValueError("no customer with that e-mail address or mobile number")
        orders = [
            r[0] for r in db.execute("SELECT id FROM orders WHERE customer_id=?", (row["id"],))
        ]
    return {"customer_id": row["id"], "name": row["name"], "tier": row["tier"], "orders": orders}


def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order: status, items, total, delivery address and dates.

    Args:
        order_id: The order number, e.g. SO10001.
    """
    with _db() as db:
        o = _order(db, order_id)
        items = [
            f"{r['name']} x{r['quantity']}"
            for r in db.execute(
                "SELECT p.name, i.quantity FROM order_items i JOIN products p ON p.sku=i.sku "
                "WHERE i.order_id=?",
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
    """Look up a product's name, price and stock.

    Args:
        sku: The product code, e.g. P-1001.
    """
    with _db() as db:
        row = db.execute("SELECT * FROM products WHERE sku=?", (sku.upper(),)).fetchone()
    if row is None:
        raise ValueError(f"no product {sku!r}; product codes look like P-1001")
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
            raise ValueError(
                f"order {o['id']} is {o['status']}; "
                "only pending or processing orders can be cancelled"
            )
        db.execute("UPDATE orders SET status='cancelled' WHERE id=?", (o["id"],))
    return {
        "order_id": o["id"],
        "status": "cancelled",
        "message": f"Order {o['id']} is cancelled; the refund of {o['total']:.2f} yuan goes back "
        "within 3 working days.",
    }


def return_order(order_id: str, reason: str) -> dict[str, Any]:
    """Start a return of a delivered order (within 7 days of delivery).

    Args:
        order_id: The order number, e.g. SO10001.
        reason: Why the customer returns it.
    """
    with _db() as db:
        o = _order(db, order_id)
        if o["status"] != "delivered" or not _within(o["delivered_at"], RETURN_DAYS):
            raise ValueError(
                f"order {o['id']} ({o['status']}) is not a delivered order within "
                f"{RETURN_DAYS} days of delivery"
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
            raise ValueError(
                f"order {o['id']} ({o['status']}) is not a delivered order within "
                f"{EXCHANGE_DAYS} days of delivery"
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
            raise ValueError(
                f"order {o['id']} is {o['status']}; the address can only change before shipping"
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
    return {
        "ticket_id": f"T{cur.lastrowid:05d}",
        "message": f"Ticket T{cur.lastrowid:05d} created.",
    }


def hand_off(reason: str) -> dict[str, Any]:
    """Transfer the conversation to a human agent (when the customer needs a person).

    Args:
        reason: Why a human should take over.
    """
    return {"message": "Transferring you to a human agent.", "reason": reason}
