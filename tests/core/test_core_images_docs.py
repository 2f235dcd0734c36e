"""docs/images.md: its code parses and the defaults it states are the code's."""

from __future__ import annotations

import re
from pathlib import Path

from glm_agent.media import MediaLimits
from glm_agent.memory import SessionStore
from glm_agent.serving.bot import ImagesConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "images.md"


def test_code_blocks_parse() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for source in blocks:
        compile(source, str(DOC), "exec")


def test_the_stated_defaults_are_the_code_s() -> None:
    text = DOC.read_text(encoding="utf-8")
    limits = MediaLimits()
    assert limits.max_bytes == 5 * 2**20 and "| 5 MB (" in text
    assert limits.max_pixels == 40_000_000 and "| 40 megapixels |" in text
    assert limits.max_images == 8 and "| images in one message | 8 |" in text
    assert SessionStore.media_limits.max_bytes == 5 * 2**20
    bot = ImagesConfig()
    assert (bot.max_bytes, bot.max_per_message) == (2 * 2**20, 3)
    assert "`images.max_bytes`, default 2 MB; `images.max_per_message`, 3" in text
