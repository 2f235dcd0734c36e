"""Images in messages: reading them (headers, limits), OpenAI's part shape, and a run with a
photo through the SDK, its session (stored by reference) and its context budget."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent import Agent, AgentInfo, FunctionModel, Message, UserMessage
from glm_agent.exceptions import MediaError
from glm_agent.media import MediaLimits, check_image, inspect_image, parse_data_url
from glm_agent.memory import ContextWindow, open_store
from glm_agent.messages import (
    AssistantMessage,
    ImagePart,
    ImageURL,
    TextPart,
    ToolMessage,
    messages_from_openai,
    messages_to_openai,
)

Image = pytest.importorskip("PIL.Image")


def encode(width: int, height: int, fmt: str, **options: Any) -> bytes:
    mode = "RGBA" if options.pop("alpha", False) else "RGB"
    buf = io.BytesIO()
    Image.new(mode, (width, height), (10, 120, 200)).save(buf, fmt, **options)
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


FORMATS = [
    ("PNG", {}, "image/png"),
    ("JPEG", {}, "image/jpeg"),
    ("JPEG", {"progressive": True, "quality": 70}, "image/jpeg"),
    ("GIF", {}, "image/gif"),
    ("WEBP", {"quality": 60}, "image/webp"),
    ("WEBP", {"lossless": True}, "image/webp"),
    ("WEBP", {"alpha": True, "quality": 60}, "image/webp"),  # VP8X
]


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 700), height=st.integers(1, 700), which=st.sampled_from(FORMATS))
def test_type_and_size_come_from_the_header(
    width: int, height: int, which: tuple[str, dict[str, Any], str]
) -> None:
    fmt, options, mime = which
    data = encode(width, height, fmt, **dict(options))
    info = inspect_image(data)
    assert info is not None and (info.mime, info.width, info.height) == (mime, width, height)
    assert inspect_image(data[:8]) is None  # cut short: not an image


def test_what_is_refused_and_why() -> None:
    png = encode(64, 48, "PNG")
    with pytest.raises(MediaError, match=r"image is \d+ bytes; the limit is 100 bytes") as e:
        check_image(png, MediaLimits(max_bytes=100))
    assert e.value.code == "image_too_large"
    bmp = encode(8, 8, "BMP")
    with pytest.raises(MediaError, match="not a readable image; types taken: image/png") as e:
        check_image(bmp)
    assert e.value.code == "invalid_image"
    with pytest.raises(MediaError, match="type image/gif is not taken") as e:
        check_image(encode(8, 8, "GIF"), MediaLimits(types=("image/png",)))
    assert e.value.code == "unsupported_media_type"
    with pytest.raises(MediaError, match="aspect ratios up to 200:1"):
        check_image(encode(402, 2, "PNG"))
    with pytest.raises(MediaError, match="limit is 1,000 pixels"):
        check_image(png, MediaLimits(max_pixels=1000))
    with pytest.raises(MediaError, match="not a base64 data: URL"):
        parse_data_url("https://example.com/a.png")
    with pytest.raises(MediaError, match="base64 is malformed"):
        parse_data_url("data:image/png;base64,%%%")


def test_openai_parts_round_trip() -> None:
    url = data_url(encode(4, 4, "PNG"))
    wire = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Is this broken?"},
                {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
                {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": []},
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": [{"type": "image_url", "image_url": "https://x/label.png"}],
        },
    ]
    msgs = messages_from_openai(wire)
    assert msgs[0].content == "Be brief."  # text-only parts are text
    user = msgs[1]
    assert isinstance(user, UserMessage) and user.text == "Is this broken?"
    assert [type(p).__name__ for p in user.media] == ["ImagePart", "VideoPart"]
    tool_msg = msgs[3]
    assert isinstance(tool_msg, ToolMessage) and tool_msg.media[0].url == "https://x/label.png"
    back = messages_to_openai(msgs)
    assert back[1]["content"] == wire[1]["content"]
    assert back[3]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x/label.png"}}
    ]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
            },
            "message 0: images and videos are taken in user and tool messages only",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
            "message 0: content part type 'input_audio' is not taken; types: text, image_url",
        ),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
            "an image URL must be http",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AA"}}
                ],
            },
            "videos are not inlined",
        ),
    ],
)
def test_malformed_parts_are_named(message: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        messages_from_openai([message])


# --- a run with a photo ------------------------------------------------------------------------


def describe(messages: list[Message], info: AgentInfo) -> str:
    """Says which photos it was given (size and whether it got the bytes), per user turn."""
    out = []
    for m in messages:
        if isinstance(m, UserMessage):
            photos = [f"{p.width}x{p.height}:{p.url[:10]}" for p in m.media]
            out.append(f"{m.text}{photos}")
    return " | ".join(out)


def test_a_photo_reaches_the_model_with_its_size() -> None:
    photo = ImagePart.from_bytes(encode(640, 480, "JPEG"))
    agent = Agent(FunctionModel(describe))
    out = agent.run([TextPart(text="It came broken: "), photo]).output
    assert out == "It came broken: ['640x480:data:image']"
    # OpenAI part dicts, and a data: URL whose size the run reads itself.
    raw = {"type": "image_url", "image_url": {"url": data_url(encode(20, 10, "PNG"))}}
    assert agent.run([{"type": "text", "text": "and "}, raw]).output == "and ['20x10:data:image']"


def test_photos_are_refused_up_front_with_the_reason() -> None:
    calls: list[int] = []

    def text_only(messages: list[Message], info: AgentInfo) -> str:
        calls.append(1)
        return "?"

    photo = ImagePart.from_bytes(encode(8, 8, "PNG"))
    agent = Agent(FunctionModel(text_only, media=(), name="glm-4-9b-chat"))
    with pytest.raises(MediaError, match="the model glm-4-9b-chat does not read images") as e:
        agent.run([TextPart(text="look"), photo])
    assert e.value.code == "model_without_vision" and not calls
    small = Agent(FunctionModel(text_only), media_limits=MediaLimits(max_bytes=200, max_images=2))
    with pytest.raises(MediaError, match="3 images in one message; at most 2"):
        small.run([photo, photo, photo])
    big = ImagePart(image_url=ImageURL(url=data_url(encode(300, 300, "PNG"))))
    with pytest.raises(MediaError, match=r"the limit is 200 bytes"):
        small.run([big])
    assert not calls


def test_sessions_keep_photos_by_reference(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    agent = Agent(FunctionModel(describe), memory=url)
    jpeg = encode(64, 32, "JPEG")
    agent.run([TextPart(text="kettle"), ImagePart.from_bytes(jpeg)], session_id="c1")
    again = agent.run("and now?", session_id="c1").output
    # The model gets the photo's bytes back for the turn it is sent again...
    assert again == "kettle['64x32:data:image'] | and now?[]"
    store = open_store(url)
    session = asyncio.run(store.load("default", "c1"))
    assert session is not None
    stored = session.messages[0]
    assert isinstance(stored, UserMessage)
    # ...while the session holds only a reference (and the size, for the token count).
    photo = stored.media[0]
    assert isinstance(photo, ImagePart) and photo.url.startswith("media:")
    assert (photo.width, photo.height) == (64, 32)
    assert "base64" not in session.model_dump_json()
    digest = photo.url.removeprefix("media:")
    assert asyncio.run(store.get_media("default", "c1", digest)) == ("image/jpeg", jpeg)
    assert asyncio.run(store.get_media("other", "c1", digest)) is None  # tenants stay apart
    asyncio.run(store.delete("default", "c1"))
    assert asyncio.run(store.get_media("default", "c1", digest)) is None


def test_the_budget_counts_image_tokens() -> None:
    window = ContextWindow(max_tokens=4000, reserve_output=100, count_media=lambda p: 1500)
    photo = ImagePart(image_url=ImageURL(url="https://x/a.png"))
    history: list[Message] = []
    for i in range(3):
        history += [
            UserMessage(content=(TextPart(text=f"q{i}"), photo)),
            AssistantMessage(content="a"),
        ]
    ctx = asyncio.run(window.build(None, history, [UserMessage(content="now")]))
    # 3 x 1,500 image tokens do not fit in 3,900: the oldest photo turn is dropped.
    assert ctx.history_start == 2 and ctx.tokens > 3000
    default = ContextWindow(max_tokens=100_000, reserve_output=100)
    sized = ImagePart(image_url=ImageURL(url="https://x/a.png"), width=1120, height=560)
    assert default.message_tokens(UserMessage(content=(sized,))) == 4 + 800 + 2


def test_a_tool_can_return_a_photo() -> None:
    from glm_agent import tool
    from glm_agent.messages import ToolCall

    depot = encode(48, 36, "PNG")

    @tool
    def parcel_photo(order_id: str) -> list[Any]:
        """The depot's photo of a parcel.

        Args:
            order_id: The order number.
        """
        return [f"parcel {order_id} at the depot:", ImagePart.from_bytes(depot)]

    def model(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            sizes = [f"{p.width}x{p.height}" for p in last.media if isinstance(p, ImagePart)]
            return f"{last.text} {sizes}"
        call = ToolCall.from_args("parcel_photo", {"order_id": "A-1"})
        return AssistantMessage(tool_calls=(call,))

    result = Agent(FunctionModel(model), tools=[parcel_photo]).run("show me")
    assert result.output == "parcel A-1 at the depot: ['48x36']"
    assert result.tool_calls[0].media[0].width == 48
    blind = Agent(FunctionModel(model, media=()), tools=[parcel_photo]).run("show me")
    assert blind.output == (
        "parcel A-1 at the depot:\n(1 image(s) returned, not shown: this model reads no images) []"
    )


def test_a_session_s_store_limit_holds_before_the_run(tmp_path: Path) -> None:
    calls: list[int] = []

    def model(messages: list[Message], info: AgentInfo) -> str:
        calls.append(1)
        return "ok"

    agent = Agent(
        FunctionModel(model), memory=f"sqlite:///{tmp_path / 's.db'}?max_media_bytes=2048"
    )
    noise = io.BytesIO()
    Image.effect_noise((120, 120), 60).save(noise, "PNG")
    photo = ImagePart(image_url=ImageURL(url=data_url(noise.getvalue())))
    assert agent.run([photo]).output == "ok"  # without a session the agent's 5 MB apply
    with pytest.raises(MediaError, match="the limit is 2 KB"):
        agent.run([photo], session_id="s1")  # the session's store keeps at most 2 KB
    assert len(calls) == 1
