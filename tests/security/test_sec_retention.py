"""What is stored is kept only as long as configured: idle conversations (with their events,
tickets, review items and agent sessions) after `retention_days`; expired console tokens and old
channel de-duplication records always."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot_harness import Shop, make_bot


def test_idle_conversations_are_deleted_with_everything_they_left(
    tmp_path: Path, shop: Shop
) -> None:
    bot = make_bot(tmp_path, shop, retention_days=30)
    try:

        async def go() -> None:
            old, _, _ = await bot.create_conversation("web")
            await bot.handle(old.id, "where is A-1001?")
            await bot.handle(old.id, "escalate please")  # a ticket too
            fresh, _, _ = await bot.create_conversation("web")
            await bot.handle(fresh.id, "hello")
            with bot.db.tx() as db:
                db.execute(
                    "UPDATE conversations SET updated_at=? WHERE id=?",
                    (time.time() - 31 * 86400, old.id),
                )
            assert await bot.store.load(bot.tenant, old.id) is not None
            assert await bot.housekeeping(force=True) == [old.id]
            assert bot.db.conversation(bot.tenant, old.id) is None
            assert bot.db.events(bot.tenant, old.id, 0, "message") == []
            assert await bot.store.load(bot.tenant, old.id) is None
            with bot.db.tx() as db:
                left = db.execute(
                    "SELECT COUNT(*) FROM tickets WHERE conversation_id=?", (old.id,)
                ).fetchone()[0]
            assert left == 0
            # The other conversation is untouched.
            assert bot.db.conversation(bot.tenant, fresh.id) is not None
            assert await bot.store.load(bot.tenant, fresh.id) is not None

        asyncio.run(go())
    finally:
        bot.close()


def test_tokens_and_dedupe_records_expire_and_nothing_else_without_retention(
    tmp_path: Path, shop: Shop
) -> None:
    bot = make_bot(tmp_path, shop)
    try:

        async def go() -> None:
            conv, _, _ = await bot.create_conversation("web")
            bot.db.add_token("dead", bot.tenant, "alice", time.time() - 1)
            bot.db.add_token("live", bot.tenant, "alice", time.time() + 3600)
            assert bot.db.claim_event(bot.tenant, "webhook", "old-event")
            with bot.db.tx() as db:
                db.execute("UPDATE dedupe SET created_at=?", (time.time() - 2 * 86400,))
                db.execute("UPDATE conversations SET updated_at=?", (time.time() - 3650 * 86400,))
            assert bot.db.claim_event(bot.tenant, "webhook", "new-event")
            assert await bot.housekeeping(force=True) == []
            with bot.db.tx() as db:
                tokens = [r[0] for r in db.execute("SELECT token_hash FROM tokens")]
                events = [r[0] for r in db.execute("SELECT event_id FROM dedupe")]
            assert tokens == ["live"] and events == ["new-event"]
            assert bot.db.conversation(bot.tenant, conv.id) is not None

        asyncio.run(go())
    finally:
        bot.close()
