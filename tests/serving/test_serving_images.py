"""Images through POST /v1/chat/completions, with the official `openai` client: to an agent
(checked, measured, kept by reference in its session) and to a plain model; refusals are 400s
that say what was wrong."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from serving_harness import live_server

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.messages import ImagePart, Message, UserMessage
from glm_agent.models import AgentInfo, FunctionModel

Image = pytest.importorskip("PIL.Image")


def jpeg_url(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (180, 40, 40)).save(buf, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def seen(messages: list[Message], info: AgentInfo) -> str:
    """What the model got: each user turn's text and photos (size, and bytes or a link)."""
    out = []
    for m in messages:
        if isinstance(m, UserMessage):
            kinds = [
                f"{p.width}x{p.height} {'bytes' if p.url.startswith('data:') else p.url}"
                for p in m.media
                if isinstance(p, ImagePart)
            ]
            out.append(f"{m.text}{kinds}")
    return " | ".join(out)


@pytest.fixture
def urls(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    from glm_agent.serving import create_app

    db = tmp_path / "vision.db"
    vision = Agent(FunctionModel(seen, name="glm-4.6v"), name="vision", memory=SQLiteStore(str(db)))
    text_only = FunctionModel(seen, name="glm-4-9b-chat", media=())
    app = create_app([vision], models={"eyes": FunctionModel(seen), "blind": text_only})
    with live_server(app) as url:
        yield url, db


def ask(client: openai.OpenAI, model: str, content: Any, **kw: Any) -> str:
    done = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], **kw
    )
    return done.choices[0].message.content or ""


def test_an_agent_sees_the_photo_and_its_session_keeps_a_reference(
    urls: tuple[str, Path],
) -> None:
    url, db = urls
    client = openai.OpenAI(base_url=url + "/v1", api_key="none")
    photo = {"type": "image_url", "image_url": {"url": jpeg_url(320, 200)}}
    text = {"type": "text", "text": "broken?"}
    headers = {"X-Session-Id": "s1"}
    assert ask(client, "vision", [text, photo], extra_headers=headers) == "broken?['320x200 bytes']"
    # The next turn gets the photo's bytes back from the store (it is still in the window).
    assert (
        ask(client, "vision", "and now?", extra_headers=headers)
        == "broken?['320x200 bytes'] | and now?[]"
    )
    session = asyncio.run(SQLiteStore(str(db)).load("default", "s1"))
    assert session is not None and "base64" not in session.model_dump_json()
    link = {"type": "image_url", "image_url": {"url": "https://cdn.example/k.png"}}
    assert ask(client, "eyes", [link]) == "['NonexNone https://cdn.example/k.png']"


def test_refusals_name_what_was_wrong(urls: tuple[str, Path]) -> None:
    url, _ = urls
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    photo = {"type": "image_url", "image_url": {"url": jpeg_url(8, 8)}}
    with pytest.raises(openai.BadRequestError) as e:
        ask(client, "blind", [photo])
    assert "the model blind does not read images" in str(e.value)
    assert e.value.body["code"] == "model_without_vision"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as e:
        ask(
            client,
            "eyes",
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        )
    assert "not a readable image" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        ask(client, "vision", [{"type": "input_audio", "input_audio": {"data": ""}}])
    assert "content part type 'input_audio' is not taken" in str(e.value)


def test_the_agent_api_takes_parts_too(urls: tuple[str, Path]) -> None:
    import httpx

    url, _ = urls
    photo = {"type": "image_url", "image_url": {"url": jpeg_url(40, 30)}}
    with httpx.Client(base_url=url, timeout=20) as client:
        r = client.post(
            "/v1/agents/vision/runs",
            json={"input": [{"type": "text", "text": "this?"}, photo], "session_id": "r1"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["output"] == "this?['40x30 bytes']"
        bad = client.post("/v1/agents/vision/runs", json={"input": [{"type": "file"}]})
        assert bad.status_code == 400
        assert "content part type 'file' is not taken" in bad.json()["error"]["message"]
