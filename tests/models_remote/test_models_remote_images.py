"""Images to served GLMs: as vLLM / SGLang read them (OpenAI parts, also in tool results for
GLM-4.6V), as Zhipu's API documents them (bare base64), never into a raw completions prompt."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from models_remote_server import FakeOpenAIServer

from glm_agent import Agent
from glm_agent.exceptions import MediaError
from glm_agent.glm import image_tokens
from glm_agent.messages import (
    AssistantMessage,
    ImagePart,
    ImageURL,
    Message,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
    VideoURL,
)
from glm_agent.models.openai_compat import OpenAICompatibleModel

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PHOTO = ImagePart.from_bytes(PNG)
CALL = ToolCall(id="call_1", name="photo_of_parcel", arguments='{"order_id": "A-1042"}')
TURN: list[Message] = [
    UserMessage(
        content=(
            TextPart(text="Is my parcel damaged? "),
            PHOTO,
            VideoPart(video_url=VideoURL(url="https://cdn.example/unboxing.mp4")),
        )
    ),
    AssistantMessage(tool_calls=(CALL,)),
    ToolMessage(content=(TextPart(text="depot photo: "), PHOTO), tool_call_id="call_1"),
]


def model_for(server: FakeOpenAIServer, provider: str, **kw: Any) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        f"glm:{uuid.uuid4().hex[:8]}",
        base_url=server.base_url + "/v1",
        provider=provider,  # type: ignore[arg-type]
        backoff=0.01,
        **kw,
    )


def test_vllm_gets_openai_parts_in_user_and_tool_messages(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server, "vllm")
    model.request_sync(TURN)
    model.close()
    sent = fake_server.last(model.model)["messages"]
    assert sent[0]["content"] == [
        {"type": "text", "text": "Is my parcel damaged? "},
        {"type": "image_url", "image_url": {"url": PHOTO.url}},
        {"type": "video_url", "video_url": {"url": "https://cdn.example/unboxing.mp4"}},
    ]
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": [
            {"type": "text", "text": "depot photo: "},
            {"type": "image_url", "image_url": {"url": PHOTO.url}},
        ],
    }
    assert PHOTO.url.startswith("data:image/png;base64,")


def test_zhipu_gets_bare_base64(fake_server: FakeOpenAIServer) -> None:
    model = model_for(fake_server, "zhipu", api_key="k")
    model.request_sync(TURN[:1])
    model.close()
    part = fake_server.last(model.model)["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": PHOTO.url.split(",", 1)[1]}}
    assert base64.b64decode(part["image_url"]["url"]) == PNG


def test_completions_mode_refuses_images_before_sending(fake_server: FakeOpenAIServer) -> None:
    model = OpenAICompatibleModel(
        "GLM-4.1V-9B-Thinking", base_url=fake_server.base_url + "/v1", mode="completions"
    )
    before = len(fake_server.requests)
    with pytest.raises(MediaError, match="use mode='chat'") as e:
        model.request_sync(TURN[:1])
    assert e.value.code == "media_needs_chat_mode"
    assert len(fake_server.requests) == before


def test_what_a_served_model_reads_comes_from_its_name(fake_server: FakeOpenAIServer) -> None:
    url = fake_server.base_url + "/v1"
    vision = OpenAICompatibleModel("zai-org/GLM-4.6V", base_url=url, provider="vllm")
    assert vision.media == ("image", "video")
    sized = ImagePart(image_url=ImageURL(url="https://x/a.png"), width=1280, height=720)
    assert vision.count_media_tokens(sized) == image_tokens("glm45", 1280, 720) == 1198
    text = OpenAICompatibleModel("glm-4.5-air", base_url=url, provider="vllm")
    assert text.media == ()
    assert OpenAICompatibleModel("my-model", base_url=url).media is None  # the server decides
    assert OpenAICompatibleModel("glm-4.5-air", base_url=url, media=("image",)).media == ("image",)
    before = len(fake_server.requests)
    with pytest.raises(MediaError, match=r"the model glm-4\.5-air does not read images"):
        Agent(text).run([TextPart(text="what is this?"), PHOTO])
    assert len(fake_server.requests) == before
