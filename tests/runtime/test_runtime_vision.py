"""LocalGLM on tiny vision checkpoints (`glm4v`, `glm4v_moe`, `glm46v`) built from the real
config classes, with the real image processors: images in the prompt, the same tokens as
transformers' own generate, image tokens counted as the prompt holds them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from glm_agent import Agent
from glm_agent.exceptions import MediaError, ModelError
from glm_agent.glm import image_tokens
from glm_agent.memory import SQLiteStore
from glm_agent.messages import (
    ImagePart,
    ImageURL,
    ResponseDone,
    TextDelta,
    TextPart,
    UserMessage,
    VideoPart,
    VideoURL,
)
from glm_agent.models.local import LocalGLM
from glm_agent.runtime import SamplingParams
from glm_agent.runtime.vision import VisionPrompt, vision_prompt
from glm_agent.settings import ModelSettings

pytestmark = pytest.mark.shared
Image = pytest.importorskip("PIL.Image")

VISION_TYPES = ("glm4v", "glm4v_moe", "glm46v")
# (Not imported from conftest: `from conftest import` picks whichever folder's was loaded last.)
GLM4_TOKENIZER = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "glm"
    / "glm-4-9b-chat"
    / "tokenizer.model"
)
GREEDY = ModelSettings(temperature=0, max_tokens=6)


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def vision_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A tiny vision checkpoint of a model type, built once per module."""
    if not GLM4_TOKENIZER.is_file():
        pytest.skip(f"needs the GLM-4 tokenizer at {GLM4_TOKENIZER}")
    from glm_agent.runtime import tiny_glm

    built: dict[str, Path] = {}

    def make(model_type: str) -> Path:
        if model_type not in built:
            out = tmp_path_factory.mktemp("vision") / model_type
            built[model_type] = tiny_glm(out, model_type=model_type, tokenizer_path=GLM4_TOKENIZER)
        return built[model_type]

    return make


@pytest.fixture(scope="module")
def models(vision_dir: Callable[[str], Path]) -> Iterator[dict[str, LocalGLM]]:
    loaded = {t: LocalGLM(vision_dir(t)) for t in VISION_TYPES}
    yield loaded
    for m in loaded.values():
        m.batcher.close()


@pytest.mark.parametrize(
    ("model_type", "family"), [("glm4v", "glm41v"), ("glm4v_moe", "glm45"), ("glm46v", "glm45")]
)
def test_a_vision_checkpoint_loads_with_its_image_processor(
    models: dict[str, LocalGLM], model_type: str, family: str
) -> None:
    m = models[model_type]
    assert (m.loaded.model_type, m.family, m.media) == (model_type, family, ("image",))
    assert type(m.loaded.model).__name__.endswith("ForConditionalGeneration")
    # transformers' GLM-V processors also build a video processor, which needs torchvision:
    # without it the image processor alone is read from preprocessor_config.json.
    try:
        import torchvision  # noqa: F401

        assert m.processor_source == "AutoProcessor"
    except ImportError:
        assert m.processor_source == "AutoImageProcessor"
    assert type(m.image_processor).__name__.startswith(
        ("Glm4vImageProcessor", "Glm46VImageProcessor")
    )


@pytest.mark.parametrize("model_type", VISION_TYPES)
def test_tokens_equal_transformers_generate(models: dict[str, LocalGLM], model_type: str) -> None:
    m = models[model_type]
    photo = ImagePart.from_bytes(png(64, 48))
    prompt = m.format.render([UserMessage(content=(TextPart(text="broken?"), photo))])
    ids = m.tokenizer.encode_prompt(prompt)
    vp = vision_prompt(ids, [png(64, 48)], m.image_processor, m.image_token_id)
    assert isinstance(vp, VisionPrompt)
    # As many image tokens as transformers' own Glm4vProcessor.replace_image_token writes.
    from transformers import Glm4vProcessor

    stub = SimpleNamespace(image_processor=m.image_processor, image_token="<|image|>")
    expected = Glm4vProcessor.replace_image_token(stub, {"image_grid_thw": vp.image_grid_thw}, 0)  # type: ignore[arg-type]
    assert vp.ids.count(m.image_token_id) == len(expected) // len("<|image|>") == 12

    ours = m.engine.generate(vp, SamplingParams(max_new_tokens=6))
    assert ours.finish_reason == "length" and len(ours.token_ids) == 6
    ids_t = torch.tensor([vp.ids])
    with torch.inference_mode():
        theirs = m.loaded.model.generate(
            input_ids=ids_t,
            attention_mask=torch.ones_like(ids_t),
            pixel_values=vp.pixel_values,
            image_grid_thw=vp.image_grid_thw,
            mm_token_type_ids=(ids_t == m.image_token_id).int(),
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    assert ours.token_ids == theirs[0, len(vp.ids) :].tolist()
    # The pixels matter: another picture, another answer.
    other = vision_prompt(ids, [png(64, 48, (0, 0, 255))], m.image_processor, m.image_token_id)
    assert m.engine.generate(other, SamplingParams(max_new_tokens=6)).token_ids != ours.token_ids


def test_local_glm_streams_and_counts_image_tokens(models: dict[str, LocalGLM]) -> None:
    m = models["glm4v"]
    photo = ImagePart.from_bytes(png(300, 200))
    ask = [UserMessage(content=(TextPart(text="what is this?"), photo))]
    text_only = m.request_sync([UserMessage(content="what is this?")], settings=GREEDY)
    whole = m.request_sync(ask, settings=GREEDY)
    # The prompt grew by exactly what count_media_tokens says the image costs.
    assert whole.usage.input_tokens - text_only.usage.input_tokens == m.count_media_tokens(photo)
    # 300x200 is resized to 308x196: 22x14 patches, merged 2x2 into 77 tokens, +2 markers;
    # the glm layer's count (no processor at hand) agrees.
    assert m.count_media_tokens(photo) == 77 + 2 == image_tokens("glm41v", 300, 200)
    events = list(m.stream_sync(ask, settings=GREEDY))
    done = events[-1]
    assert isinstance(done, ResponseDone)
    streamed = "".join(e.content for e in events if isinstance(e, TextDelta))
    assert done.response.message == whole.message
    assert streamed == (whole.message.content or "") or whole.message.reasoning


def test_refusals_name_what_a_local_model_cannot_read(models: dict[str, LocalGLM]) -> None:
    m = models["glm4v"]
    link = ImagePart(image_url=ImageURL(url="https://cdn.example/k.png"))
    with pytest.raises(MediaError, match="LocalGLM reads images from data: URLs") as e:
        m.request_sync([UserMessage(content=(link,))])
    assert e.value.code == "image_link"
    clip = VideoPart(video_url=VideoURL(url="https://cdn.example/a.mp4"))
    with pytest.raises(MediaError, match="LocalGLM reads no videos"):
        m.request_sync([UserMessage(content=(clip,))])
    with pytest.raises(ModelError, match="1 image placeholders for 2 images"):
        vision_prompt(
            [1, m.image_token_id, 2], [png(8, 8), png(8, 8)], m.image_processor, m.image_token_id
        )


def test_a_session_photo_is_read_again_on_the_next_turn(
    models: dict[str, LocalGLM], tmp_path: Path
) -> None:
    m = models["glm46v"]
    agent: Agent[Any] = Agent(m, memory=SQLiteStore(str(tmp_path / "s.db")), model_settings=GREEDY)
    photo = ImagePart.from_bytes(png(120, 90))
    first = agent.run([TextPart(text="look"), photo], session_id="c1")
    second = agent.run("and now?", session_id="c1")
    stored = asyncio.run(agent.memory.load("default", "c1"))  # type: ignore[union-attr]
    assert stored is not None and stored.messages[0].media[0].url.startswith("media:")  # type: ignore[union-attr]
    # The second prompt holds the first turn again, its image included (stored by reference,
    # sent with its pixels).
    image_tokens = m.count_media_tokens(photo)
    assert second.usage.input_tokens > first.usage.input_tokens + image_tokens - 2


def test_a_text_checkpoint_refuses_images_up_front(tiny_glm_dir: Path) -> None:
    text = LocalGLM(tiny_glm_dir, prefix_cache_bytes=0)
    try:
        assert text.media == ()
        with pytest.raises(MediaError, match="does not read images"):
            Agent(text).run([TextPart(text="x"), ImagePart.from_bytes(png(8, 8))])
    finally:
        text.batcher.close()


@pytest.mark.parametrize("model_type", ["glm4v_moe", "glm46v"])
def test_glm45v_reads_images_in_tool_results(models: dict[str, LocalGLM], model_type: str) -> None:
    from glm_agent.messages import AssistantMessage, ToolCall, ToolMessage

    m = models[model_type]
    call = ToolCall(id="c1", name="parcel_photo", arguments='{"order_id": "A-1"}')
    mine, depot = ImagePart.from_bytes(png(64, 48)), ImagePart.from_bytes(png(120, 90))
    turns = [
        UserMessage(content=(TextPart(text="mine: "), mine)),
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(content=(TextPart(text="depot: "), depot), tool_call_id="c1"),
    ]
    both = m.request_sync(turns, settings=GREEDY)
    # Both images are in the prompt, in order, each with as many tokens as counted.
    from glm_agent.models._local_vision import conversation_images

    ids = m.tokenizer.encode_prompt(m.format.render(turns))
    assert ids.count(m.image_token_id) == 2  # one placeholder per image before expansion
    vp = vision_prompt(ids, conversation_images(turns), m.image_processor, m.image_token_id)
    image = [m.count_media_tokens(p) - 2 for p in (mine, depot)]
    assert vp.ids.count(m.image_token_id) == sum(image) == 12 + 12
    assert both.usage.input_tokens == len(vp)
