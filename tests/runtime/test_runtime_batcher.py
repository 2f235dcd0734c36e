"""The batcher: requests queued while the model is busy run together as one batch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

from glm_agent.runtime import Engine, SamplingParams
from glm_agent.runtime.batcher import Batcher


def _gate() -> tuple[threading.Event, threading.Event, Callable[..., torch.Tensor]]:
    """A logits hook that holds the worker inside its first batch until released."""
    entered, release = threading.Event(), threading.Event()

    def hook(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        entered.set()
        release.wait(timeout=30)
        return logits

    return entered, release, hook


def test_queued_requests_run_as_one_batch(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    entered, release, hook = _gate()
    batcher = Batcher(engine, max_batch_size=4, logits_hook=hook)
    params = SamplingParams(max_new_tokens=5)
    busy = batcher.submit([1, 2, 3], params)
    assert entered.wait(timeout=30)
    texts: list[str] = []
    a = batcher.submit([4, 5, 6, 7, 8], params)
    b = batcher.submit([9, 10], SamplingParams(max_new_tokens=3), on_text=texts.append)
    release.set()
    results = [f.result(timeout=60) for f in (busy, a, b)]
    batcher.close()
    assert list(batcher.batch_sizes) == [1, 2]
    assert results[1].token_ids == engine.generate([4, 5, 6, 7, 8], params).token_ids
    assert (
        results[2].token_ids == engine.generate([9, 10], SamplingParams(max_new_tokens=3)).token_ids
    )
    assert texts == []  # the engine has no tokenizer here: ids only


def test_batches_respect_the_context_budget(make_tiny_model: Callable[..., Any]) -> None:
    probe = Engine(make_tiny_model("glm"), memory_limit=2**20)
    fits_one = probe.budget().memory_tokens * 2 // 3  # one fits, two together do not
    entered, release, hook = _gate()
    batcher = Batcher(probe, max_batch_size=4, logits_hook=hook)
    params = SamplingParams(max_new_tokens=1)
    busy = batcher.submit([1], params)
    assert entered.wait(timeout=30)
    big = [batcher.submit([1] * (fits_one - 1), params) for _ in range(2)]
    release.set()
    for f in (busy, *big):
        assert len(f.result(timeout=120).token_ids) == 1
    batcher.close()
    assert list(batcher.batch_sizes) == [1, 1, 1]


def test_cancelled_before_start(make_tiny_model: Callable[..., Any]) -> None:
    engine = Engine(make_tiny_model("glm"))
    entered, release, hook = _gate()
    batcher = Batcher(engine, logits_hook=hook)
    busy = batcher.submit([1, 2], SamplingParams(max_new_tokens=2))
    assert entered.wait(timeout=30)
    cancel = threading.Event()
    queued = batcher.submit([3, 4], SamplingParams(max_new_tokens=2), cancel=cancel)
    cancel.set()
    release.set()
    assert queued.result(timeout=30).finish_reason == "cancelled"
    assert busy.result(timeout=30).finish_reason == "length"
    batcher.close()
