"""Caveats a loader records about the file it is reading (an encoding guessed, OCR used)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_notes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("notes", default=None)


def note(message: str) -> None:
    """Record a caveat about the file being read (ignored outside `collecting`)."""
    notes = _notes.get()
    if notes is not None:
        notes.append(message)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """The notes recorded inside the block."""
    notes: list[str] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)
