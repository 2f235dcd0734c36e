"""Create the Bamboo Lane (竹巷生活) demo store: customers, products and orders in SQLite.

The store is fictional, written for glm-agent. The data is the same on every run (a seeded
random generator and a fixed store clock, `TODAY`), so tests and demos behave identically.

    python seed.py [path/to/store.db]      # default: .glm-agent/store.db beside this file
"""

from __future__ import annotations

import random
import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path

TODAY = date(2026, 11, 20)
"""The store's clock: return windows are counted from this day."""
DEFAULT_PATH = Path(__file__).parent / ".glm-agent" / "store.db"

SCHEMA = """
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT, email TEXT, phone TEXT, tier TEXT,
                        city TEXT);
CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT, name_zh TEXT, price REAL, stock INTEGER,
                       category TEXT);
CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id TEXT, status TEXT, created_at TEXT,
                     delivered_at TEXT, address TEXT, total REAL);
CREATE TABLE order_items (order_id TEXT, sku TEXT, quantity INTEGER, price REAL);
CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT, kind TEXT,
                       detail TEXT, created_at TEXT);
CREATE TABLE tickets (id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT, detail TEXT,
                      created_at TEXT);
"""

PRODUCTS = [
    ("P-1001", "Bamboo cutting board", "竹制砧板", 89.0, "kitchen"),
    ("P-1002", "Ceramic tea set (6 cups)", "陶瓷茶具六件套", 268.0, "kitchen"),
    ("P-1003", "Cotton bath towel", "纯棉浴巾", 59.0, "bath"),
    ("P-1004", "Linen bed sheet, queen", "亚麻床单（1.8米）", 399.0, "bedroom"),
    ("P-1005", "Rattan storage basket", "藤编收纳篮", 129.0, "storage"),
    ("P-1006", "Stainless steel kettle", "不锈钢烧水壶", 199.0, "kitchen"),
    ("P-1007", "Down pillow", "羽绒枕", 329.0, "bedroom"),
    ("P-1008", "Glass food containers (3)", "玻璃保鲜盒三件套", 99.0, "kitchen"),
    ("P-1009", "Wool throw blanket", "羊毛盖毯", 459.0, "living"),
    ("P-1010", "Aroma diffuser", "香薰机", 239.0, "living"),
    ("P-1011", "Cast iron pot 24cm", "铸铁锅24厘米", 699.0, "kitchen"),
    ("P-1012", "Desk lamp", "护眼台灯", 179.0, "living"),
]
SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu"]
GIVEN = ["Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Tao", "Xin", "Hui", "Jun"]
CITIES = ["Shanghai", "Beijing", "Hangzhou", "Shenzhen", "Chengdu", "Wuhan"]
STATUSES = ["pending", "processing", "shipped", "delivered", "delivered", "delivered", "cancelled"]


def create(path: str | Path = DEFAULT_PATH) -> Path:
    """Write a fresh store database at `path` (replacing any) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rng = random.Random(20261120)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO products VALUES (?,?,?,?,?,?)",
        [(s, n, z, p, rng.randint(0, 80), c) for s, n, z, p, c in PRODUCTS],
    )
    customers = []
    for i in range(20):
        name = f"{SURNAMES[i % 10]} {GIVEN[(i * 3) % 10]}"
        cid = f"C{1001 + i}"
        phone = f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"
        email = f"{name.lower().replace(' ', '.')}{i}@example.com"
        tier = rng.choice(["standard", "standard", "gold"])
        customers.append((cid, name, email, phone, tier, CITIES[i % len(CITIES)]))
    db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", customers)
    for i in range(60):
        oid = f"SO{10001 + i}"
        cust = customers[i % len(customers)]
        status = STATUSES[i % len(STATUSES)]
        created = TODAY - timedelta(days=1 + (i * 5) % 29)
        delivered = created + timedelta(days=3) if status == "delivered" else None
        items = rng.sample(PRODUCTS, k=1 + i % 3)
        rows = [(oid, sku, 1 + (i + j) % 2, price) for j, (sku, _, _, price, _) in enumerate(items)]
        total = sum(q * p for _, _, q, p in rows)
        address = (
            f"{rng.randint(1, 999)} {rng.choice(['Nanjing', 'Huaihai', 'Jiefang'])} Road, {cust[5]}"
        )
        db.execute(
            "INSERT INTO orders VALUES (?,?,?,?,?,?,?)",
            (
                oid,
                cust[0],
                status,
                created.isoformat(),
                delivered.isoformat() if delivered else None,
                address,
                total,
            ),
        )
        db.executemany("INSERT INTO order_items VALUES (?,?,?,?)", rows)
    db.commit()
    db.close()
    return path


def reset() -> Path:
    """Restore the store the tools use (`CS_STORE_DB`, else the default path) to its seed;
    `glm-agent support reset-demo agent.yaml` calls it (support.yaml's `demo_reset`)."""
    import os

    return create(os.environ.get("CS_STORE_DB") or DEFAULT_PATH)


if __name__ == "__main__":
    print(create(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH))
