"""Security regression tests: each finding of the audit (issue 16) replayed against a real
server on 127.0.0.1 where it was found that way. The bot and server harnesses of tests/bot and
tests/serving are reused (put on sys.path here, so this folder also runs alone)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("bot", "serving"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.append(str(_TESTS / _folder))

from bot_harness import Shop  # noqa: E402


@pytest.fixture
def shop() -> Shop:
    return Shop()
