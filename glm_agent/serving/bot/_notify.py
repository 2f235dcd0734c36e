"""Wake-ups for long-lived event streams (in-process; streams also poll the database, so
replicas sharing one database see each other's events within a poll interval)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Notifier"]


class Notifier:
    """`wait(key)` returns when `notify(key)` is called or after a timeout."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, key: str) -> asyncio.Event:
        """The event the next `notify(key)` sets; take it before reading, then wait on it."""
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = asyncio.Event()
        return ev

    def notify(self, key: str) -> None:
        """Wake everyone waiting on `key`."""
        ev = self._events.pop(key, None)
        if ev is not None:
            ev.set()

    @staticmethod
    async def wait(ev: asyncio.Event, timeout: float) -> None:
        """Wait for `ev` at most `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)
