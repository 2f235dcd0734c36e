"""Images in GLM prompts: which families take them, GLM-4.5V's placeholders, and image token
counts against transformers' own image processors."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_agent.exceptions import MediaError
from glm_agent.glm import (
    VISION_FAMILIES,
    facts_for_model,
    get_format,
    image_tokens,
    media_tokens,
)
from glm_agent.media import VIDEO_TOKENS
from glm_agent.messages import (
    AssistantMessage,
    ImagePart,
    ImageURL,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    VideoPart,
    VideoURL,
)

IMAGE = "<|begin_of_image|><|image|><|end_of_image|>"
VIDEO = "<|begin_of_video|><|video|><|end_of_video|>"
PHOTO = ImagePart(image_url=ImageURL(url="https://shop.example/kettle.jpg"), width=640, height=480)
CLIP = VideoPart(video_url=VideoURL(url="https://shop.example/unboxing.mp4"))
ASK = UserMessage(content=(TextPart(text="It arrived like this: "), PHOTO, TextPart(text="?")))


@pytest.mark.parametrize("family", ["glm4", "glm4-0414", "chatglm3", "glm47", "glm5", "glm52"])
def test_text_only_families_refuse_images_and_name_the_ones_that_take_them(family: str) -> None:
    with pytest.raises(MediaError) as caught:
        get_format(family).render([ASK])
    assert caught.value.code == "model_without_vision"
    assert f"the {family} format takes no images" in str(caught.value)
    assert "glm41v (GLM-4.1V-Thinking)" in str(caught.value)
    # Text parts alone are text: every family renders them.
    assert "It arrived" in get_format(family).render(
        [UserMessage(content=(TextPart(text="It arrived"),))]
    )


def test_vision_families_place_the_placeholders() -> None:
    assert (
        get_format("glm41v")
        .render([ASK])
        .endswith(f"It arrived like this: {IMAGE}?<|assistant|>\n")
    )
    assert f"<|user|>It arrived like this: {IMAGE}?" in get_format("glm53").render([ASK])
    assert sorted(VISION_FAMILIES) == ["glm41v", "glm45", "glm53"]


def test_glm45v_user_turns_and_tool_results() -> None:
    # GLM-4.5V / 4.6V (UNVERIFIED: their template is not saved; GLM-OCR's GLM-V template is the
    # lead): user parts as GLM-4.1V, a tool result's parts inside one <tool_response>.
    call = ToolCall(id="c1", name="photo_of_order", arguments='{"order_id": "A-1042"}')
    messages = [
        UserMessage(content=(CLIP, TextPart(text="and "), PHOTO)),
        AssistantMessage(content="", tool_calls=(call,)),
        ToolMessage(content=(TextPart(text="packed: "), PHOTO), tool_call_id="c1"),
    ]
    prompt = get_format("glm45").render(messages, enable_thinking=False)
    assert f"<|user|>\n{VIDEO}and {IMAGE}/nothink<|assistant|>" in prompt
    assert f"<|observation|>\n<tool_response>\npacked: {IMAGE}\n</tool_response>" in prompt


def test_which_models_read_images() -> None:
    assert facts_for_model("zai-org/GLM-4.5V").media == ("image", "video")
    assert facts_for_model("GLM-4.6V-Flash").media == ("image", "video")
    assert facts_for_model("/ckpt/step-9", "glm4v_moe").media == ("image", "video")
    assert facts_for_model("zai-org/GLM-4.6").media == ()
    assert facts_for_model("glm-4-9b-chat-hf").media == ()
    assert facts_for_model("THUDM/GLM-4.1V-9B-Thinking").media == ("image", "video")


def test_media_tokens() -> None:
    assert media_tokens("glm4", PHOTO) is None
    assert media_tokens("glm41v", CLIP) == VIDEO_TOKENS
    assert media_tokens("glm41v", PHOTO) == image_tokens("glm41v", 640, 480)
    unknown = ImagePart(image_url=ImageURL(url="https://x/y.png"))
    assert media_tokens("glm53", unknown) == image_tokens("glm53", 1024, 1024)


# --- against transformers' processors -----------------------------------------------------------

SIDES = st.integers(1, 60) | st.integers(28, 4000) | st.integers(1, 12000)


def processors() -> dict[str, list[object]]:
    pytest.importorskip("transformers")
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil
    from transformers.models.glm5_next.image_processing_pil_glm5_next import (
        Glm5NextImageProcessorPil,
    )
    from transformers.models.glm46v.image_processing_pil_glm46v import Glm46VImageProcessorPil

    # GLM-4.1V (glm4v), GLM-4.5V (glm4v_moe uses Glm4vProcessor), GLM-4.6V (glm46v), GLM-5.3.
    return {
        "glm41v": [Glm4vImageProcessorPil()],
        "glm45": [Glm4vImageProcessorPil(), Glm46VImageProcessorPil()],
        "glm53": [Glm5NextImageProcessorPil()],
    }


@settings(max_examples=300, deadline=None)
@given(width=SIDES, height=SIDES)
def test_counts_equal_the_processors_counts(width: int, height: int) -> None:
    if max(width, height) / min(width, height) > 200:
        return  # the processors refuse these; check_image does too
    for family, procs in processors().items():
        for proc in procs:
            patches = proc.get_number_of_image_patches(height, width, {})  # type: ignore[attr-defined]
            assert image_tokens(family, width, height) == patches // 4 + 2, (family, proc)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (17, 300), (3000, 31), (1, 1)])
def test_counts_equal_what_the_processors_make_of_real_pixels(width: int, height: int) -> None:
    from PIL import Image

    image = Image.new("RGB", (width, height), (200, 30, 30))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    for family, procs in processors().items():
        for proc in procs:
            out = proc(images=[Image.open(io.BytesIO(buf.getvalue()))], return_tensors="np")  # type: ignore[operator]
            t, h, w = (int(x) for x in out["image_grid_thw"][0])
            assert image_tokens(family, width, height) == t * h * w // 4 + 2
