"""SQL the SQLite and PostgreSQL stores share: both keep the same four tables (`sessions`,
`turns`, `facts`, `media`) and differ in placeholders and locking, not in their queries."""

from __future__ import annotations

from typing import Any

from glm_agent.memory._store import SESSION_COLUMNS

__all__ = ["FACT_COLUMNS", "Sql"]

FACT_COLUMNS = "id, text, vector, created_at"


class Sql:
    """The shared statements in one driver's placeholder style (`?` for sqlite3, `%s` for
    psycopg)."""

    def __init__(self, placeholder: str) -> None:
        p = placeholder
        self.p = p
        live = f"(expires_at IS NULL OR expires_at > {p})"
        self.live = live
        self.read_session = (
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = {p} AND session_id = {p} "
            f"AND {live}"
        )
        self.read_turns = (
            f"SELECT messages FROM turns WHERE tenant = {p} AND session_id = {p} "
            f"AND version <= {p} ORDER BY version"
        )
        self.delete_turns = f"DELETE FROM turns WHERE tenant = {p} AND session_id = {p}"
        self.delete_session = f"DELETE FROM sessions WHERE tenant = {p} AND session_id = {p}"
        self.insert_turn = f"INSERT INTO turns VALUES ({p}, {p}, {p}, {p}, {p})"
        self.bump_version = (
            f"UPDATE sessions SET version = {p}, updated_at = {p}, expires_at = {p} "
            f"WHERE tenant = {p} AND session_id = {p}"
        )
        self.touch = (
            f"UPDATE sessions SET updated_at = {p}, expires_at = {p} "
            f"WHERE tenant = {p} AND session_id = {p}"
        )
        self.write_summary = (
            f"UPDATE sessions SET summary = {p}, summary_covered = {p} "
            f"WHERE tenant = {p} AND session_id = {p} AND {live}"
        )
        self.list_facts = (
            f"SELECT {FACT_COLUMNS} FROM facts WHERE tenant = {p} AND customer_id = {p} "
            "ORDER BY created_at, id"
        )
        self.delete_fact = (
            f"DELETE FROM facts WHERE tenant = {p} AND customer_id = {p} AND id = {p}"
        )
        self.delete_facts = f"DELETE FROM facts WHERE tenant = {p} AND customer_id = {p}"
        self.insert_fact = f"INSERT INTO facts VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
        self.insert_media = (
            f"INSERT INTO media VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING"
        )
        # A live session's image only: an expired session's are gone before the purge.
        self.read_media = (
            "SELECT m.mime, m.data FROM media m JOIN sessions s ON s.tenant = m.tenant AND "
            f"s.session_id = m.session_id WHERE m.tenant = {p} AND m.session_id = {p} AND "
            f"m.id = {p} AND (s.expires_at IS NULL OR s.expires_at > {p})"
        )
        self.delete_media = f"DELETE FROM media WHERE tenant = {p} AND session_id = {p}"

    def query(
        self,
        tenant: str,
        customer_id: str | None,
        status: str | None,
        limit: int | None,
        now: float,
    ) -> tuple[str, list[Any]]:
        """Live sessions of a tenant, filtered, most recently updated first."""
        p = self.p
        sql = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = {p} AND {self.live}"
        args: list[Any] = [tenant, now]
        if customer_id is not None:
            sql += f" AND customer_id = {p}"
            args.append(customer_id)
        if status is not None:
            sql += f" AND status = {p}"
            args.append(status)
        sql += " ORDER BY updated_at DESC, session_id"
        if limit is not None:
            sql += f" LIMIT {p}"
            args.append(limit)
        return sql, args
