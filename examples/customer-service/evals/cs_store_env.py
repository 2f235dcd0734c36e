"""The evaluation environment of the Bamboo Lane bot: a fresh store database for every run.

`setup` seeds a new store (seed.py, the same data every time) in a temporary folder and points
the tools at it (`CS_STORE_DB`); `state` reads back what the `state:` checks look at; `teardown`
puts everything back. Cases that change the store use orders no other case touches, so they can
run concurrently.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any


class StoreEnvironment:
    """A fresh store per evaluation run (see the module docstring)."""

    def __init__(self, dataset_dir: Path) -> None:
        self.example = dataset_dir.resolve().parent
        self.folder: Path | None = None
        self.previous: str | None = None

    def setup(self) -> None:
        """Seed a store in a temporary folder and point the tools at it."""
        if str(self.example) not in sys.path:
            sys.path.insert(0, str(self.example))
        import seed

        self.folder = Path(tempfile.mkdtemp(prefix="bamboo-lane-eval-"))
        self.previous = os.environ.get("CS_STORE_DB")
        os.environ["CS_STORE_DB"] = str(seed.create(self.folder / "store.db"))

    def state(self, case: Any, deps: Any) -> dict[str, Any]:
        """Orders (status, address) and the return / exchange requests and tickets made."""
        db = sqlite3.connect(os.environ["CS_STORE_DB"])
        try:
            orders = {
                oid: {"status": status, "address": address}
                for oid, status, address in db.execute("SELECT id, status, address FROM orders")
            }
            rows = db.execute("SELECT order_id, kind FROM requests")
            requests = [{"order_id": o, "kind": k} for o, k in rows]
            tickets = db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        finally:
            db.close()
        return {"orders": orders, "requests": requests, "tickets": tickets}

    def teardown(self) -> None:
        """Point the tools back where they were and remove the temporary store."""
        if self.previous is None:
            os.environ.pop("CS_STORE_DB", None)
        else:
            os.environ["CS_STORE_DB"] = self.previous
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
