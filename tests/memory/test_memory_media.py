"""Images kept with their session, on every backend: by sha256, once, within the size limit,
gone with the session (deleted, expired), never across tenants or sessions."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from glm_agent.exceptions import MediaError, UserError
from glm_agent.memory import open_store
from glm_agent.messages import UserMessage

Image = pytest.importorskip("PIL.Image")


def png(width: int = 40, height: int = 30, noise: bool = False) -> bytes:
    image = Image.effect_noise((width, height), 80) if noise else Image.new("RGB", (width, height))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_images_live_and_die_with_their_session(store_url: str) -> None:
    async def scenario() -> None:
        store = open_store(store_url)
        try:
            await store.append("acme", "s1", [UserMessage(content="hi")])
            data = png()
            info = await store.put_media("acme", "s1", data)
            assert (info.mime, info.width, info.height) == ("image/png", 40, 30)
            assert await store.put_media("acme", "s1", data) == info  # kept once
            assert await store.get_media("acme", "s1", info.sha256) == ("image/png", data)
            assert await store.get_media("acme", "s2", info.sha256) is None
            assert await store.get_media("other", "s1", info.sha256) is None
            assert await store.get_media("acme", "s1", "0" * 64) is None
            with pytest.raises(MediaError, match="not a readable image"):
                await store.put_media("acme", "s1", b"<svg onload=alert(1)>")
            assert await store.delete("acme", "s1")
            assert await store.get_media("acme", "s1", info.sha256) is None
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_expired_sessions_take_their_images(store_url: str) -> None:
    sep = "&" if "?" in store_url else "?"

    async def scenario() -> None:
        store = open_store(f"{store_url}{sep}ttl=0.5")
        try:
            await store.append("acme", "s1", [UserMessage(content="hi")])
            info = await store.put_media("acme", "s1", png())
            assert await store.get_media("acme", "s1", info.sha256) is not None
            await asyncio.sleep(0.8)
            assert await store.get_media("acme", "s1", info.sha256) is None
            await store.purge_expired()
            await store.append("acme", "s1", [UserMessage(content="again")])  # a new session
            assert await store.get_media("acme", "s1", info.sha256) is None
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_the_size_limit_is_a_store_option(store_url: str) -> None:
    sep = "&" if "?" in store_url else "?"

    async def scenario() -> None:
        store = open_store(f"{store_url}{sep}max_media_bytes=2048")
        try:
            await store.append("acme", "s1", [UserMessage(content="hi")])
            big = png(200, 200, noise=True)
            assert len(big) > 2048
            with pytest.raises(MediaError, match="the limit is 2 KB") as e:
                await store.put_media("acme", "s1", big)
            assert e.value.code == "image_too_large"
        finally:
            await store.aclose()

    asyncio.run(scenario())
    with pytest.raises(UserError, match="max_media_bytes must be a number of bytes >= 1024"):
        open_store(f"{store_url}{sep}max_media_bytes=12")


def test_the_cli_shows_a_photo_as_a_reference(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from glm_agent.cli._memory import app
    from glm_agent.media import media_ref
    from glm_agent.messages import ImagePart, ImageURL, TextPart

    url = f"sqlite:///{tmp_path / 's.db'}"

    async def store_a_photo() -> str:
        store = open_store(url)
        try:
            info = await store.put_media("acme", "s1", png())
            photo = ImagePart(image_url=ImageURL(url=media_ref(info.sha256)), width=40, height=30)
            await store.append("acme", "s1", [UserMessage(content=(TextPart(text="look"), photo))])
            return info.sha256
        finally:
            await store.aclose()

    digest = asyncio.run(store_a_photo())
    shown = CliRunner().invoke(app, ["show", "s1", "--store", url, "--tenant", "acme"])
    assert shown.exit_code == 0, shown.output
    assert f"[user] look [image 40x30 media:{digest}]" in shown.output
