"""Prefix reuse in the engine: exact (tokens and logits) against a full recompute, for every
GLM architecture, in left-padded batches, across sessions, under the batcher, after failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch

from glm_agent.exceptions import ModelError
from glm_agent.runtime import Engine, SamplingParams
from glm_agent.runtime.batcher import Batcher
from glm_agent.runtime.budget import context_budget

MODEL_TYPES = ("glm", "glm4", "glm4_moe")
WAIT = 20


def _tokens(n: int, seed: int) -> list[int]:
    return torch.randint(0, 1023, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


class Capture:
    """A logits hook that records the first step's logits of each request."""

    def __init__(self) -> None:
        self.first: list[torch.Tensor] = []

    def __call__(self, logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        if not any(generated):
            self.first.append(logits.clone())
        return logits


def _agent_run(engine: Engine, steps: int, seed: int, hook: Capture | None = None) -> list[Any]:
    """An agent-shaped run: each prompt is the previous prompt, the model's output, then new
    tokens (a tool result); returns each step's result."""
    prompt = _tokens(70, seed)
    results = []
    for step in range(steps):
        res = engine.generate(prompt, SamplingParams(max_new_tokens=8), logits_hook=hook)
        results.append(res)
        prompt = prompt + res.token_ids + _tokens(25, seed * 100 + step)
    return results


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_reuse_gives_the_tokens_and_logits_of_a_full_recompute(
    make_tiny_model: Callable[..., Any], model_type: str
) -> None:
    model = make_tiny_model(model_type)
    on_hook, off_hook = Capture(), Capture()
    on = _agent_run(Engine(model, prefill_chunk=16), 4, seed=1, hook=on_hook)
    off = _agent_run(Engine(model, prefill_chunk=16, prefix_cache_bytes=0), 4, 1, off_hook)
    assert [r.token_ids for r in on] == [r.token_ids for r in off]
    # Step 1 is cold; later steps reuse the previous prompt and its output, less the last
    # generated token (sampled, never fed back, so not in the cache).
    assert on[0].cached_tokens == 0
    assert [r.cached_tokens for r in on[1:]] == [
        prev.prompt_tokens + len(prev.token_ids) - 1 for prev in on[:-1]
    ]
    assert all(r.cached_tokens == 0 for r in off)
    for a, b in zip(on_hook.first, off_hook.first, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_reused_logits_equal_the_model_without_a_cache(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm4_moe")
    engine, hook = Engine(model, prefill_chunk=32), Capture()
    history = _tokens(120, seed=2)
    engine.generate(history, SamplingParams(max_new_tokens=1))
    prompt = history + _tokens(9, seed=3)
    result = engine.generate(prompt, SamplingParams(max_new_tokens=1), logits_hook=hook)
    assert result.cached_tokens == 120
    with torch.inference_mode():
        full = model(torch.tensor([prompt])).logits[:, -1]
    torch.testing.assert_close(hook.first[0], full, atol=1e-5, rtol=1e-5)


def test_an_identical_prompt_recomputes_only_its_last_token(
    make_tiny_model: Callable[..., Any],
) -> None:
    engine = Engine(make_tiny_model("glm"))
    prompt = _tokens(40, seed=4)
    first = engine.generate(prompt, SamplingParams(max_new_tokens=6))
    again = engine.generate(prompt, SamplingParams(max_new_tokens=6))
    assert again.token_ids == first.token_ids
    assert again.cached_tokens == 39  # the last prompt token's logits start decoding


def test_sessions_share_their_system_prompt(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm4")
    engine = Engine(model)
    reference = Engine(model, prefix_cache_bytes=0)
    system = _tokens(64, seed=5)
    params = SamplingParams(max_new_tokens=5)
    for session in range(3):
        prompt = system + _tokens(12, seed=50 + session)
        result = engine.generate(prompt, params)
        assert result.token_ids == reference.generate(prompt, params).token_ids
        assert result.cached_tokens == (0 if session == 0 else 64)
    store = engine.prefix_cache
    assert store is not None
    # The system prompt is held once, each session's own part beside it.
    assert store.tokens == 64 + 3 * (12 + 4)


def test_left_padded_batch_reuses_and_matches_single_runs(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm")
    engine = Engine(model, prefill_chunk=8)
    reference = Engine(model, prefill_chunk=8, prefix_cache_bytes=0)
    params = SamplingParams(max_new_tokens=6)
    a, b = _tokens(50, seed=6), _tokens(30, seed=7)
    engine.generate(a, params)
    engine.generate(b, params)
    prompts = [a + _tokens(4, 8), b + _tokens(11, 9), _tokens(20, 10)[:1] + b[:5]]
    rows = engine.generate_batch(prompts, params)
    for p, row in zip(prompts, rows, strict=True):
        assert row.token_ids == reference.generate(p, params).token_ids
    # Slots are right-aligned at 54: a's row is cached up to 50, b's up to 30 (slot 43), the
    # third row has nothing cached but starts at slot 48; so the batch prefills from slot 43.
    assert [r.cached_tokens for r in rows] == [43, 30, 0]
    # ...and the batch left every row in the cache for the next step.
    assert engine.generate(prompts[1] + rows[1].token_ids, params).cached_tokens == 41 + 5


def test_sampled_generation_with_reuse_is_reproducible(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm")
    params = SamplingParams(max_new_tokens=12, temperature=1.3, top_p=0.9, seed=11)
    history = _tokens(80, seed=12)
    on = Engine(model)
    on.generate(history, SamplingParams(max_new_tokens=2))
    prompt = history + _tokens(7, seed=13)
    result = on.generate(prompt, params)
    assert result.cached_tokens == 80
    assert (
        result.token_ids == Engine(model, prefix_cache_bytes=0).generate(prompt, params).token_ids
    )


def test_cancelled_requests_leave_nothing(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    cancel = threading.Event()
    cancel.set()
    result = engine.generate(_tokens(30, seed=14), SamplingParams(max_new_tokens=4), cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert engine.prefix_cache is not None and engine.prefix_cache.tokens == 0


def test_the_cache_stays_within_its_budget(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    per_token = 2 * 2 * 2 * 16 * 4  # layers * (K, V) * kv heads * head dim * fp32
    engine = Engine(model, prefix_cache_bytes=150 * per_token)
    params = SamplingParams(max_new_tokens=3)
    prompts = [_tokens(60, seed=20 + i) for i in range(4)]
    for p in prompts:
        engine.generate(p, params)
    store = engine.prefix_cache
    assert store is not None
    assert store.bytes <= 150 * per_token and store.tokens == 2 * 62
    # The oldest sessions went first: the newest two are still there.
    assert engine.generate(prompts[3], params).cached_tokens == 59
    assert engine.generate(prompts[0], params).cached_tokens == 0


def test_a_request_needing_the_memory_evicts_prefixes(
    make_tiny_model: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_tiny_model("glm")
    engine = Engine(model, prefix_cache_bytes=1 << 30)
    old = _tokens(200, seed=30)
    engine.generate(old, SamplingParams(max_new_tokens=2))
    store = engine.prefix_cache
    assert store is not None and store.tokens == 201
    bare = context_budget(model.config, torch.float32, "cpu", free_bytes=0)
    per_token = bare.kv_bytes_per_token + bare.activation_bytes_per_token
    # A device with room for 100 tokens of context besides what the prefix cache holds.
    free = int(100 * per_token / 0.9) + 1
    monkeypatch.setattr("glm_agent.runtime.engine.free_memory_bytes", lambda device: free)
    assert (
        engine.budget().max_tokens == 100 + (201 * bare.kv_bytes_per_token * 9 // 10) // per_token
    )
    # 110 + 4 tokens fit only in the memory the prefix cache holds: it is given up for them.
    result = engine.generate(_tokens(110, seed=31), SamplingParams(max_new_tokens=4))
    assert len(result.token_ids) == 4
    assert store.match(old).length == 0
    assert store.stats.evicted_tokens == 201


def test_a_failed_batch_drops_the_prefix_it_reused(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    engine = Engine(model)
    batcher = Batcher(engine)
    params = SamplingParams(max_new_tokens=4)
    history = _tokens(60, seed=40)
    other = _tokens(30, seed=41)
    history += batcher.submit(history, params).result(timeout=WAIT).token_ids[:3]
    other += batcher.submit(other, params).result(timeout=WAIT).token_ids[:3]
    store = engine.prefix_cache
    assert store is not None and store.match(history).length == 63

    def boom(module: torch.nn.Module, args: Any, kwargs: Any) -> None:
        raise RuntimeError("injected fault")

    handle = model.register_forward_pre_hook(boom, with_kwargs=True)
    try:
        failed = batcher.submit(history + _tokens(5, seed=42), params)
        with pytest.raises(ModelError, match="injected fault"):
            failed.result(timeout=WAIT)
    finally:
        handle.remove()
    assert store.match(history).length == 0  # nobody gets that K/V again
    assert store.match(other).length == 33  # what the batch did not touch stays
    prompt = history + _tokens(5, seed=42)
    again = batcher.submit(prompt, params).result(timeout=WAIT)
    reference = Engine(model, prefix_cache_bytes=0).generate(prompt, params)
    assert again.token_ids == reference.token_ids and again.cached_tokens == 0
    batcher.close()


def test_concurrent_sessions_through_the_batcher_are_exact(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm4")
    engine = Engine(model, prefill_chunk=16)
    reference = Engine(model, prefill_chunk=16, prefix_cache_bytes=0)
    batcher = Batcher(engine, max_batch_size=4)
    system = _tokens(48, seed=60)
    params = SamplingParams(max_new_tokens=5)
    prompts = {n: system + _tokens(6 + n, seed=61 + n) for n in range(4)}
    expected: dict[int, list[list[int]]] = {n: [] for n in prompts}
    for _step in range(3):  # three agent steps of four sessions, all in flight together
        futures = {n: batcher.submit(p, params) for n, p in prompts.items()}
        for n, future in futures.items():
            out = future.result(timeout=WAIT).token_ids
            assert out == reference.generate(prompts[n], params).token_ids
            expected[n].append(out)
            prompts[n] = prompts[n] + out + _tokens(7, seed=70 + n)
    store = engine.prefix_cache
    assert store is not None and store.stats.reused_tokens > store.stats.prompt_tokens // 2
    assert max(batcher.batch_sizes) > 1  # rows really were batched
    batcher.close()


def test_threads_sharing_an_engine_get_exact_answers(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm")
    engine = Engine(model, prefill_chunk=16)
    reference = Engine(model, prefill_chunk=16, prefix_cache_bytes=0)
    system = _tokens(40, seed=80)
    params = SamplingParams(max_new_tokens=4)
    errors: list[BaseException] = []

    def session(n: int) -> None:
        try:
            prompt = system + _tokens(5, seed=81 + n)
            for step in range(3):
                out = engine.generate(prompt, params).token_ids
                assert out == reference.generate(prompt, params).token_ids
                prompt = prompt + out + _tokens(6, seed=90 + 10 * n + step)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT * 3)
    assert not errors, errors
    assert engine.prefix_cache is not None and engine.prefix_cache.stats.reused_tokens > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reuse_with_compiled_decode_on_gpu() -> None:
    from transformers import AutoModelForCausalLM

    from glm_agent.runtime import tiny_config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("glm", 1024), attn_implementation="sdpa")
    model = model.cuda().eval()
    compiled = Engine(model, compile_decode=True)  # CUDA graphs over reused cache buffers
    reference = Engine(model, prefix_cache_bytes=0)
    prompt = _tokens(300, seed=100)
    for step in range(3):
        ours = compiled.generate(prompt, SamplingParams(max_new_tokens=8))
        assert (
            ours.token_ids == reference.generate(prompt, SamplingParams(max_new_tokens=8)).token_ids
        )
        assert (ours.cached_tokens > 0) is (step > 0)
        prompt = prompt + ours.token_ids + _tokens(20, seed=101 + step)
