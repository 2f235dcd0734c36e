"""Photos from customers through the support pipeline, over real HTTP: the widget's route and the
OpenAI-compatible door reach the same checks and storage; the console and the customer read the
photo back by reference; refusals are sentences a customer can act on, in their language."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from bot_harness import ACCOUNTS, UNLIMITED, Customer, console_login, live_server, parse_sse

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.messages import ImagePart, Message, UserMessage
from glm_agent.models import AgentInfo, FunctionModel
from glm_agent.serving.bot import ImagesConfig, SupportBot, SupportConfig, create_bot_app

Image = pytest.importorskip("PIL.Image")


def jpeg(width: int = 320, height: int = 240, noise: bool = False) -> bytes:
    buf = io.BytesIO()
    image = Image.effect_noise((width, height), 60) if noise else Image.new("RGB", (width, height))
    image.convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


def as_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def looks(messages: list[Message], info: AgentInfo) -> str:
    """A vision model stand-in: says what photos it got (with their bytes) and the text."""
    last = next(m for m in reversed(messages) if isinstance(m, UserMessage))
    photos = [p for p in last.media if isinstance(p, ImagePart)]
    got = ", ".join(
        f"{p.width}x{p.height} ({len(base64.b64decode(p.url.split(',')[1]))} bytes)"
        for p in photos
        if p.url.startswith("data:")
    )
    return f"I see {got or 'no photo'}; you said {last.text!r}."


def vision_bot(
    tmp_path: Path, media: tuple[str, ...] | None = ("image",), **cfg: Any
) -> SupportBot:
    agent: Agent[str] = Agent(FunctionModel(looks, name="glm-4.6v", media=media))
    config = SupportConfig(
        tenant="acme",
        database=str(tmp_path / "support.db"),
        console_accounts=ACCOUNTS,
        limits=UNLIMITED,
        **cfg,
    )
    return SupportBot(agent, config, base_dir=tmp_path, store=SQLiteStore(str(tmp_path / "s.db")))


@pytest.fixture
def vision(tmp_path: Path) -> Iterator[tuple[SupportBot, httpx.Client]]:
    bot = vision_bot(tmp_path, images=ImagesConfig(max_bytes=50_000, max_per_message=2))
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=20) as client,
    ):
        yield bot, client
    bot.close()


def send(customer: Customer, text: str, *photos: bytes | str) -> list[dict[str, Any]]:
    images = [p if isinstance(p, str) else as_url(p) for p in photos]
    r = customer.client.post(
        f"/v1/support/conversations/{customer.id}/messages",
        json={"text": text, "images": images},
        headers=customer.headers,
    )
    assert r.status_code == 200, r.text
    return parse_sse(r.text)


def test_a_photo_goes_to_the_model_and_is_kept_by_reference(
    vision: tuple[SupportBot, httpx.Client],
) -> None:
    bot, client = vision
    customer = Customer(client, locale="en")
    photo = jpeg()
    events = send(customer, "my kettle arrived like this, call me on 13812345678", photo)
    sent = next(e for e in events if e["type"] == "message" and e["role"] == "customer")
    digest = sent["images"][0]["id"]
    assert sent["images"] == [{"id": digest, "width": 320, "height": 240}]
    answer = next(e for e in events if e["type"] == "message" and e["role"] == "bot")
    assert answer["text"].startswith(f"I see 320x240 ({len(photo)} bytes)")
    # The photo alone is a message too.
    alone = send(customer, "", photo)
    assert any(e.get("role") == "bot" and "you said ''" in e["text"] for e in alone)

    # The customer and the console read it back; nobody else does.
    url = f"/v1/support/conversations/{customer.id}/media/{digest}"
    got = client.get(url, headers=customer.headers)
    assert got.status_code == 200 and got.content == photo
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert client.get(url).status_code == 403
    console = f"/v1/console/conversations/{customer.id}/media/{digest}"
    assert client.get(console).status_code == 401
    assert client.get(console, headers=console_login(client)).content == photo
    assert client.get(url.replace(digest, "f" * 64), headers=customer.headers).status_code == 404
    assert customer.transcript()["messages"][1]["images"][0]["id"] == digest

    # The session holds the reference and masked text: never the bytes.
    session = asyncio.run(bot.store.load("acme", customer.id))
    assert session is not None
    first = session.messages[0]
    assert isinstance(first, UserMessage) and first.media[0].url == f"media:{digest}"
    assert "13812345678" not in first.text and "base64" not in session.model_dump_json()


def test_refusals_are_for_the_customer(vision: tuple[SupportBot, httpx.Client]) -> None:
    _, client = vision
    en, zh = Customer(client, locale="en"), Customer(client, locale="zh")

    def error(customer: Customer, text: str, *photos: bytes | str) -> str:
        events = send(customer, text, *photos)
        return str(next(e["message"] for e in events if e["type"] == "error"))

    big = jpeg(400, 300, noise=True)
    assert len(big) > 50_000
    assert error(en, "look", big) == (
        "That photo is too large (the limit is 49 KB). Please send a smaller one."
    )
    assert error(zh, "看看", jpeg(), jpeg(), jpeg()) == "一次最多发送 2 张图片。"
    bmp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(bmp, "BMP")
    assert error(en, "x", as_url(bmp.getvalue(), "image/bmp")) == (
        "That photo could not be opened. Please try another."
    )
    r = client.post(
        f"/v1/support/conversations/{en.id}/messages",
        json={"images": ["https://evil.example/a.png"]},
        headers=en.headers,
    )
    assert r.status_code == 400 and "data: URLs" in r.text


def test_a_bot_whose_model_reads_no_images_says_so(tmp_path: Path) -> None:
    bot = vision_bot(tmp_path, media=())
    with (
        live_server(create_bot_app(bot, heartbeat=0.5)) as url,
        httpx.Client(base_url=url, timeout=20) as client,
    ):
        info = client.get("/v1/support/info").json()["images"]
        assert info == {
            "accepted": False,
            "max_bytes": 2 * 1024 * 1024,
            "max_per_message": 3,
            "types": ["image/png", "image/jpeg", "image/gif", "image/webp"],
        }
        events = send(Customer(client, locale="en"), "what is this?", jpeg())
        assert {
            "type": "error",
            "message": "Sorry, I can't look at photos here. Please describe the problem in words.",
        }.items() <= next(e for e in events if e["type"] == "error").items()
    bot.close()


def test_the_openai_door_takes_photos_through_the_same_pipeline(tmp_path: Path) -> None:
    bot = vision_bot(tmp_path)
    with live_server(create_bot_app(bot, heartbeat=0.5)) as url:
        api = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        photo = jpeg(64, 48)
        done = api.chat.completions.create(
            model=bot.agent.name,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "damaged?"},
                        {"type": "image_url", "image_url": {"url": as_url(photo)}},
                    ],
                }
            ],
            extra_headers={"X-Session-Id": "api-1"},
        )
        assert done.choices[0].message.content == (
            f"I see 64x48 ({len(photo)} bytes); you said 'damaged?'."
        )
        # No words to tell the language by: the bot's default (Chinese).
        with pytest.raises(openai.BadRequestError, match="请直接上传图片，而不是发送图片链接"):
            api.chat.completions.create(
                model=bot.agent.name,
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                    }
                ],
                extra_headers={"X-Session-Id": "api-2"},
            )
        api.close()
    bot.close()
