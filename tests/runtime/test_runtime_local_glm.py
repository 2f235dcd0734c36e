"""LocalGLM end to end on tiny_glm: render, generate, parse, usage, streaming events."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from glm_agent.exceptions import ContextLengthError
from glm_agent.messages import (
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolDefinition,
    UserMessage,
)
from glm_agent.models.local import LocalGLM
from glm_agent.settings import ModelSettings

pytestmark = pytest.mark.shared

SHARED = Path(__file__).resolve().parents[2].parent / "shared"

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather of a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
GREEDY = ModelSettings(temperature=0, max_tokens=6)


@pytest.fixture(scope="module")
def local(tiny_glm_dir: Path) -> Iterator[LocalGLM]:
    model = LocalGLM(tiny_glm_dir, prefill_chunk=8)
    yield model
    model.logits_hook = None


def _force(model: LocalGLM, text: str, stop: int) -> None:
    ids = [*model.tokenizer.encode(text), stop]

    def hook(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        out[:, ids[min(len(generated[0]), len(ids) - 1)]] = 0.0
        return out

    model.logits_hook = hook


def test_tiny_model_says_what_it_is(local: LocalGLM) -> None:
    assert "tiny" in local.name
    assert local.family == "glm4"
    assert local.attention_backend == "sdpa"
    assert local.loaded.config.vocab_size == 151552
    assert local.loaded.config.eos_token_id == [151329, 151336, 151338]
    assert set(local.stop_token_ids) == {151329, 151336, 151338}


def test_request_renders_generates_and_counts(local: LocalGLM) -> None:
    local.logits_hook = None
    messages = [UserMessage(content="Where is my order A-1042? 我的订单在哪里")]
    response = local.request_sync(messages, settings=GREEDY)
    prompt = local.format.render(messages, ())
    assert response.usage.input_tokens == len(local.tokenizer.encode_prompt(prompt))
    assert response.usage.output_tokens == 6
    assert response.finish_reason == "length"
    assert response.message.content  # noise, but decoded noise
    again = local.request_sync(messages, settings=GREEDY)
    assert again.message == response.message  # greedy is deterministic


def test_stream_events_end_with_the_same_response(local: LocalGLM) -> None:
    local.logits_hook = None
    messages = [UserMessage(content="Hello")]
    events = list(local.stream_sync(messages, settings=GREEDY))
    assert isinstance(events[-1], ResponseDone)
    assert not any(isinstance(e, ResponseDone) for e in events[:-1])
    text = "".join(e.content for e in events if isinstance(e, TextDelta))
    final = events[-1].response
    assert text == final.message.content
    assert final == local.request_sync(messages, settings=GREEDY).model_copy(
        update={"message": final.message}
    )


def test_forced_tool_call_is_parsed(local: LocalGLM) -> None:
    _force(local, 'get_weather\n{"city": "Paris"}', 151338)  # <|observation|> ends the call
    try:
        response = local.request_sync(
            [UserMessage(content="Weather in Paris?")], [WEATHER], ModelSettings(max_tokens=40)
        )
        events = list(
            local.stream_sync(
                [UserMessage(content="Weather in Paris?")], [WEATHER], ModelSettings(max_tokens=40)
            )
        )
    finally:
        local.logits_hook = None
    (call,) = response.message.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert response.finish_reason == "tool_calls"
    assert (
        response.usage.output_tokens
        == len(local.tokenizer.encode('get_weather\n{"city": "Paris"}')) + 1
    )
    kinds = [type(e) for e in events]
    assert kinds.index(ToolCallStart) < kinds.index(ToolCallEnd) < kinds.index(ResponseDone)
    assert ToolCallArgsDelta in kinds or ToolCallEnd in kinds
    streamed = events[-1].response.message.tool_calls  # type: ignore[union-attr]
    assert [c.name for c in streamed] == ["get_weather"]


def test_stop_string_from_settings(local: LocalGLM) -> None:
    _force(local, "Hello there, General Kenobi", 151329)
    try:
        response = local.request_sync(
            [UserMessage(content="hi")], settings=ModelSettings(stop=["General"], max_tokens=20)
        )
    finally:
        local.logits_hook = None
    assert (response.message.content or "").rstrip() == "Hello there,"  # the format trims
    assert response.finish_reason == "stop"


def test_context_refusal_before_generation(local: LocalGLM) -> None:
    with pytest.raises(ContextLengthError):
        local.request_sync([UserMessage(content="hi")], settings=ModelSettings(max_tokens=200_000))


def test_closing_the_stream_early_cancels(local: LocalGLM) -> None:
    local.logits_hook = None

    async def first_event() -> None:
        stream = local.request_stream(
            [UserMessage(content="go")], settings=ModelSettings(temperature=0, max_tokens=2000)
        )
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(first_event())
    # The model is free again: a new request is not stuck behind the cancelled one.
    assert local.request_sync([UserMessage(content="hi")], settings=GREEDY).usage.output_tokens


def test_chat_template_mismatch_is_logged(
    tiny_glm_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The same checkpoint with a chat_template that disagrees with the glm4 format.
    ckpt = tmp_path / "odd-template"
    ckpt.mkdir()
    for f in tiny_glm_dir.iterdir():
        if f.name != "chat_template.jinja":
            (ckpt / f.name).symlink_to(f)
    (ckpt / "chat_template.jinja").write_text(
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
    )
    with caplog.at_level("WARNING", logger="glm_agent.models.local"):
        LocalGLM(ckpt)
    assert any("chat_template differs" in r.getMessage() for r in caplog.records)
    good = (SHARED / "glm" / "templates" / "glm-4-9b-chat.jinja").read_text()
    (ckpt / "chat_template.jinja").write_text(good)
    caplog.clear()
    with caplog.at_level("WARNING", logger="glm_agent.models.local"):
        LocalGLM(ckpt)
    assert not any("chat_template differs" in r.getMessage() for r in caplog.records)


def test_concurrent_requests_share_a_batch(local: LocalGLM) -> None:
    entered, release = threading.Event(), threading.Event()

    def gate(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        entered.set()
        release.wait(timeout=30)
        return logits

    questions = ["Where is my order?", "订单 A-1042 什么时候到？", "Refund please"]
    solo = [local.request_sync([UserMessage(content=q)], settings=GREEDY) for q in questions]

    async def together() -> list[ModelResponse]:
        first = asyncio.create_task(local.request([UserMessage(content=questions[0])], (), GREEDY))
        await asyncio.to_thread(entered.wait, 30)  # the worker is busy with the first one
        rest = [
            asyncio.create_task(local.request([UserMessage(content=q)], (), GREEDY))
            for q in questions[1:]
        ]
        await asyncio.sleep(0.1)
        release.set()
        return [await first, *[await t for t in rest]]

    local.logits_hook = gate
    try:
        together_responses = asyncio.run(together())
    finally:
        local.logits_hook = None
    assert list(local.batcher.batch_sizes)[-2:] == [1, 2]
    for alone, batched in zip(solo, together_responses, strict=True):
        assert batched.message == alone.message
        assert batched.usage == alone.usage


def test_tiny_glm_greedy_equals_transformers_generate(local: LocalGLM) -> None:
    """The real-vocabulary tiny_glm, real prompts: our engine vs transformers' generate."""
    from glm_agent.runtime import SamplingParams

    model = local.loaded.model
    for question in ["Where is my order A-1042?", "我想退货。", "Bonjour! 🤖"]:
        prompt = local.format.render([UserMessage(content=question)], [WEATHER])
        ids = local.tokenizer.encode_prompt(prompt)
        ours = local.engine.generate(ids, SamplingParams(max_new_tokens=8))
        with torch.no_grad():
            ref = model.generate(
                torch.tensor([ids]),
                max_new_tokens=8,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=151329,
            )
        assert ours.token_ids == ref[0, len(ids) :].tolist()


def test_cancelling_one_request_leaves_its_batch_mates(local: LocalGLM) -> None:
    entered, release = threading.Event(), threading.Event()

    def gate(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        entered.set()
        release.wait(timeout=30)
        return logits

    alone = local.request_sync([UserMessage(content="second")], settings=GREEDY)

    async def scenario() -> tuple[ModelResponse, ModelResponse, bool]:
        busy = asyncio.create_task(local.request([UserMessage(content="busy")], (), GREEDY))
        await asyncio.to_thread(entered.wait, 30)
        doomed = asyncio.create_task(local.request([UserMessage(content="first")], (), GREEDY))
        kept = asyncio.create_task(local.request([UserMessage(content="second")], (), GREEDY))
        await asyncio.sleep(0.05)
        doomed.cancel()
        await asyncio.sleep(0.05)
        release.set()
        try:
            await doomed
        except asyncio.CancelledError:
            cancelled = True
        else:
            cancelled = False
        return await busy, await kept, cancelled

    local.logits_hook = gate
    try:
        _busy, kept, cancelled = asyncio.run(scenario())
    finally:
        local.logits_hook = None
    assert cancelled
    assert kept.message == alone.message


def test_timeout_raises_model_error(local: LocalGLM) -> None:
    from glm_agent.exceptions import ModelError

    release = threading.Event()

    def slow(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        release.wait(timeout=0.2)
        return logits

    local.logits_hook = slow
    try:
        with pytest.raises(ModelError, match="no answer within"):
            local.request_sync(
                [UserMessage(content="hi")],
                settings=ModelSettings(temperature=0, max_tokens=50, timeout=0.3),
            )
    finally:
        release.set()
        local.logits_hook = None
    # The timed-out generation was cancelled: the model answers the next request normally.
    assert local.request_sync([UserMessage(content="hi")], settings=GREEDY).usage.output_tokens == 6
