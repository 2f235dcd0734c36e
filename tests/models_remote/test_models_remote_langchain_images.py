"""Images across the LangChain boundary, both ways: LangChain's block shapes in, OpenAI parts
out (what ChatOpenAI sends to a vLLM / SGLang server as they are)."""

from __future__ import annotations

import base64
import uuid

import pytest
from langchain_core import messages as lc
from langchain_openai import ChatOpenAI
from models_remote_server import FakeOpenAIServer
from pydantic import SecretStr

from glm_agent.exceptions import UserError
from glm_agent.messages import ImagePart, Message, TextPart, UserMessage
from glm_agent.models._langchain_messages import content_from_langchain
from glm_agent.models.function import AgentInfo, FunctionModel
from glm_agent.models.langchain import from_langchain, to_langchain

PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)
DATA_URL = "data:image/png;base64," + PNG_B64


def urls(messages: list[Message], info: AgentInfo) -> str:
    user = next(m for m in messages if isinstance(m, UserMessage))
    return user.text + " " + " ".join(p.url[:30] for p in user.media)


def test_langchain_blocks_reach_a_glm_agent_model() -> None:
    chat = to_langchain(FunctionModel(urls))
    blocks = [
        {"type": "text", "text": "which is broken?"},
        {"type": "image_url", "image_url": {"url": DATA_URL}},  # OpenAI's shape
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},  # LangChain 1.x
        {"type": "image", "source_type": "url", "url": "https://x/b.jpg"},  # LangChain 0.3
        {"type": "image", "url": "https://x/c.webp"},
    ]
    answer = chat.invoke([lc.HumanMessage(content=blocks)])  # type: ignore[arg-type]
    assert answer.content == (
        "which is broken? data:image/png;base64,iVBORw0K data:image/png;base64,iVBORw0K "
        "https://x/b.jpg https://x/c.webp"
    )


def test_a_block_glm_agent_cannot_read_is_named() -> None:
    with pytest.raises(UserError, match=r"a HumanMessage: a image_url part needs image_url\.url"):
        content_from_langchain([{"type": "image", "file_id": "f-1"}], "a HumanMessage")
    assert content_from_langchain([{"type": "text", "text": "hi"}], "x") == "hi"


def test_chat_openai_sends_the_photo_to_the_server(fake_server: FakeOpenAIServer) -> None:
    name = f"glm:{uuid.uuid4().hex[:6]}"
    chat = ChatOpenAI(
        model=name, base_url=fake_server.base_url + "/v1", api_key=SecretStr("k"), max_retries=0
    )
    photo = ImagePart.from_bytes(base64.b64decode(PNG_B64))
    from_langchain(chat).request_sync(
        [UserMessage(content=(TextPart(text="is this damaged?"), photo))]
    )
    assert fake_server.last(name)["messages"][0]["content"] == [
        {"type": "text", "text": "is this damaged?"},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
    ]
