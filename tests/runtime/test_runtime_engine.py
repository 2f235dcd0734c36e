"""The engine against transformers' own forward and generate, on tiny random GLMs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch

from glm_agent.runtime import Engine, SamplingParams, decode_step, new_cache, prefill

MODEL_TYPES = ("glm", "glm4", "glm4_moe")


def _prompts(vocab: int, lengths: tuple[int, ...], seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab - 1, (n,), generator=g).tolist() for n in lengths]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_greedy_equals_transformers_generate(
    make_tiny_model: Callable[..., Any], model_type: str
) -> None:
    model = make_tiny_model(model_type)
    engine = Engine(model, prefill_chunk=16)
    for prompt in _prompts(1024, (5, 23, 41)):
        ours = engine.generate(prompt, SamplingParams(max_new_tokens=16))
        with torch.no_grad():
            ref = model.generate(
                torch.tensor([prompt]),
                max_new_tokens=16,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        assert ours.token_ids == ref[0, len(prompt) :].tolist()
        assert ours.finish_reason == "length"
        assert ours.prompt_tokens == len(prompt)


def test_left_padded_batch_equals_transformers_generate(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm")
    prompts = _prompts(1024, (9, 30, 17), seed=2)
    ours = Engine(model, prefill_chunk=8).generate_batch(prompts, SamplingParams(max_new_tokens=10))
    longest = max(map(len, prompts))
    ids = torch.zeros((len(prompts), longest), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(prompts):
        ids[r, longest - len(p) :] = torch.tensor(p)
        mask[r, longest - len(p) :] = 1
    with torch.no_grad():
        ref = model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=10,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    for r in range(len(prompts)):
        assert ours[r].token_ids == ref[r, longest:].tolist()


def test_batch_rows_equal_single_runs(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm4"), prefill_chunk=8)
    prompts = _prompts(1024, (4, 19), seed=3)
    batch = engine.generate_batch(prompts, SamplingParams(max_new_tokens=8))
    for p, row in zip(prompts, batch, strict=True):
        assert row.token_ids == engine.generate(p, SamplingParams(max_new_tokens=8)).token_ids


def test_chunked_prefill_logits_equal_unchunked(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    (prompt,) = _prompts(1024, (300,), seed=4)
    ids = torch.tensor([prompt])
    pos = torch.arange(len(prompt))[None]
    with torch.inference_mode():
        whole = prefill(model, ids, new_cache(model, 1, 320), None, pos, chunk=4096)
        chunked = prefill(model, ids, new_cache(model, 1, 320), None, pos, chunk=64)
        ref = model(ids).logits[:, -1]
    assert whole is not None and chunked is not None
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(whole, ref, atol=1e-5, rtol=1e-5)


def test_kv_cache_decode_equals_full_recomputation(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm4_moe")
    (prompt,) = _prompts(1024, (37,), seed=5)
    cache = new_cache(model, 1, 64)
    tokens = list(prompt)
    with torch.inference_mode():
        logits = prefill(
            model, torch.tensor([prompt]), cache, None, torch.arange(len(prompt))[None], chunk=16
        )
        assert logits is not None
        for _ in range(6):
            nxt = int(logits.argmax(-1))
            tokens.append(nxt)
            logits = decode_step(
                model, torch.tensor([[nxt]]), cache, None, torch.tensor([[len(tokens) - 1]])
            )
            full = model(torch.tensor([tokens])).logits[:, -1]
            torch.testing.assert_close(logits, full, atol=1e-5, rtol=1e-5)


def test_lm_head_only_sees_the_last_position(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    shapes: list[tuple[int, ...]] = []
    handle = model.lm_head.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    try:
        Engine(model, prefill_chunk=32).generate(list(range(100)), SamplingParams(max_new_tokens=3))
    finally:
        handle.remove()
    assert shapes and all(s[1] == 1 for s in shapes), shapes  # never [B, T, V]


def test_stop_token_ends_the_sequence(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    (prompt,) = _prompts(1024, (12,), seed=6)
    free = engine.generate(prompt, SamplingParams(max_new_tokens=12))
    stop = free.token_ids[4]
    first = free.token_ids.index(stop)
    result = engine.generate(prompt, SamplingParams(max_new_tokens=12, stop_token_ids=(stop,)))
    assert result.finish_reason == "stop"
    assert result.stop_token_id == stop
    assert result.token_ids == free.token_ids[:first]


def _letters(ids: Any) -> str:
    return "".join(chr(ord("a") + i % 26) for i in ids)


def test_stop_strings_cut_the_text_and_stream_matches(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"), decode=_letters)
    (prompt,) = _prompts(1024, (10,), seed=7)
    free = engine.generate(prompt, SamplingParams(max_new_tokens=20))
    assert free.text == _letters(free.token_ids)
    stop = free.text[6:8]
    cut = free.text.index(stop)
    params = SamplingParams(max_new_tokens=20, stop=(stop,))
    result = engine.generate(prompt, params)
    assert result.text == free.text[:cut]
    assert result.finish_reason == "stop"
    streamed = "".join(step.text for step in engine.stream([prompt], params))
    assert streamed == result.text


def test_seeded_sampling_is_reproducible(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    (prompt,) = _prompts(1024, (8,), seed=8)
    params = SamplingParams(
        max_new_tokens=24, temperature=5.0, top_p=0.95, top_k=500, repetition_penalty=1.3, seed=123
    )
    a = engine.generate(prompt, params).token_ids
    b = engine.generate(prompt, params).token_ids
    c = engine.generate(prompt, SamplingParams(**{**params.__dict__, "seed": 124})).token_ids
    greedy = engine.generate(prompt, SamplingParams(max_new_tokens=24)).token_ids
    assert a == b
    assert a != c and a != greedy


def test_cancellation_stops_generation(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    cancel = threading.Event()
    run = engine.stream([[1, 2, 3]], SamplingParams(max_new_tokens=50), cancel=cancel)
    for steps, _ in enumerate(run, start=1):
        if steps == 3:
            cancel.set()
    assert run.results[0].finish_reason == "cancelled"
    assert len(run.results[0].token_ids) == 3


def test_logits_hook_forces_tokens_through_the_engine(make_tiny_model: Callable[..., Any]) -> None:
    forced = [7, 8, 9, 1023]

    def force(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        out[:, forced[len(generated[0])]] = 0.0
        return out

    engine = Engine(make_tiny_model("glm"))
    result = engine.generate(
        [5, 6], SamplingParams(max_new_tokens=10, stop_token_ids=(1023,)), logits_hook=force
    )
    assert result.token_ids == [7, 8, 9]
    assert result.stop_token_id == 1023


def test_reused_cache_gives_the_same_tokens(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    fresh = Engine(model)
    reuse = Engine(model, reuse_cache=True)
    for prompt in _prompts(1024, (30, 12, 50), seed=9):
        params = SamplingParams(max_new_tokens=9)
        assert reuse.generate(prompt, params).token_ids == fresh.generate(prompt, params).token_ids
    assert len(reuse._caches) == 1  # one 1024-slot bucket served all three requests
    assert fresh.reuse_cache is False  # no compiled decode on CPU: nothing kept between requests


def test_batch_rows_with_their_own_params_and_cancel(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    prompts = _prompts(1024, (6, 14, 9), seed=10)
    greedy_short = SamplingParams(max_new_tokens=3)
    sampled = SamplingParams(max_new_tokens=12, temperature=1.5, seed=7)
    greedy_long = SamplingParams(max_new_tokens=12)
    stop_row = threading.Event()
    stop_row.set()  # the third row is cancelled before it starts decoding
    rows = engine.generate_batch(
        prompts, [greedy_short, sampled, greedy_long], cancel=[None, None, stop_row]
    )
    assert rows[0].token_ids == engine.generate(prompts[0], greedy_short).token_ids
    assert rows[0].finish_reason == "length" and len(rows[0].token_ids) == 3
    assert rows[1].token_ids == engine.generate(prompts[1], sampled).token_ids
    assert rows[2].finish_reason == "cancelled" and rows[2].token_ids == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_decode_matches_eager_on_gpu() -> None:
    from transformers import AutoModelForCausalLM

    from glm_agent.runtime import tiny_config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("glm", 1024), attn_implementation="sdpa")
    model = model.cuda().eval()
    eager = Engine(model)
    compiled = Engine(model, compile_decode=True)
    assert compiled.reuse_cache
    for prompt in _prompts(1024, (20, 33), seed=11):
        params = SamplingParams(max_new_tokens=12)
        assert (
            compiled.generate(prompt, params).token_ids == eager.generate(prompt, params).token_ids
        )
