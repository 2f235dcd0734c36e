"""A failing forward pass or a dead worker fails every waiting request at once, never a hang."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from glm_agent.exceptions import ModelError
from glm_agent.messages import UserMessage
from glm_agent.runtime import Engine, SamplingParams
from glm_agent.runtime.batcher import Batcher
from glm_agent.runtime.budget import ContextBudget
from glm_agent.settings import ModelSettings

# Every wait below is bounded: a regression shows as a failed assertion, not a stuck suite.
WAIT = 20


@contextmanager
def failing_forward(model: torch.nn.Module, message: str = "injected fault") -> Iterator[None]:
    """Every forward pass of `model` raises while the block runs."""

    def boom(module: torch.nn.Module, args: Any, kwargs: Any) -> None:
        raise RuntimeError(message)

    handle = model.register_forward_pre_hook(boom, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _gate() -> tuple[threading.Event, threading.Event, Callable[..., torch.Tensor]]:
    """A logits hook that holds the worker inside its first decode step until released."""
    entered, release = threading.Event(), threading.Event()

    def hook(logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        entered.set()
        release.wait(timeout=WAIT)
        return logits

    return entered, release, hook


def test_a_failing_forward_fails_the_request_with_its_cause(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm")
    batcher = Batcher(Engine(model))
    params = SamplingParams(max_new_tokens=3)
    with failing_forward(model, "CUDA error: an illegal memory access"):
        future = batcher.submit([1, 2, 3], params)
        with pytest.raises(ModelError, match="RuntimeError: CUDA error: an illegal memory access"):
            future.result(timeout=WAIT)
    # The worker survived the failed batch: the next request is served.
    assert len(batcher.submit([1, 2, 3], params).result(timeout=WAIT).token_ids) == 3
    batcher.close()


def test_every_request_of_a_failing_batch_fails_at_once(
    make_tiny_model: Callable[..., Any],
) -> None:
    model = make_tiny_model("glm")
    entered, release, hook = _gate()
    batcher = Batcher(Engine(model), max_batch_size=8, logits_hook=hook)
    params = SamplingParams(max_new_tokens=4)
    busy = batcher.submit([1, 2, 3], params)
    assert entered.wait(timeout=WAIT)
    queued = [batcher.submit([4 + i, 5, 6], params) for i in range(3)]
    with failing_forward(model):
        release.set()
        for future in (busy, *queued):
            error = future.exception(timeout=WAIT)
            assert isinstance(error, ModelError)
            assert "RuntimeError: injected fault" in str(error)
            assert isinstance(error.__cause__, RuntimeError)
    assert list(batcher.batch_sizes) == [1, 3]  # the three queued ones failed as one batch
    healthy = [batcher.submit([7, 8], params) for _ in range(2)]
    assert all(len(f.result(timeout=WAIT).token_ids) == 4 for f in healthy)
    batcher.close()


class _FlakyBudget(Engine):
    """An engine whose budget check raises while `broken` is set (the worker's own code path)."""

    broken = False

    def budget(self) -> ContextBudget:
        if self.broken:
            raise OSError("device lost")
        return super().budget()


def test_a_dead_worker_fails_what_waits_and_the_next_request_starts_a_new_one(
    make_tiny_model: Callable[..., Any],
) -> None:
    engine = _FlakyBudget(make_tiny_model("glm"))
    entered, release, hook = _gate()
    batcher = Batcher(engine, logits_hook=hook)
    params = SamplingParams(max_new_tokens=2)
    busy = batcher.submit([1, 2], params)
    assert entered.wait(timeout=WAIT)
    waiting = [batcher.submit([3, 4], params) for _ in range(3)]
    engine.broken = True  # the worker's next round (taking jobs) raises: the thread dies
    release.set()
    assert len(busy.result(timeout=WAIT).token_ids) == 2  # already running: it finishes
    for future in waiting:
        with pytest.raises(ModelError, match="OSError: device lost"):
            future.result(timeout=WAIT)
    engine.broken = False
    batcher.logits_hook = None
    assert len(batcher.submit([5, 6], params).result(timeout=WAIT).token_ids) == 2
    batcher.close()


def test_local_glm_reports_the_fault_and_recovers(tiny_glm_dir: Path) -> None:
    from glm_agent.models.local import LocalGLM

    llm = LocalGLM(tiny_glm_dir, device="cpu")
    settings = ModelSettings(max_tokens=3, timeout=WAIT)
    messages = [UserMessage(content="hello")]

    async def stream() -> None:
        async for _ in llm.request_stream(messages, settings=settings):
            pass

    async def main() -> None:
        with failing_forward(llm.loaded.model):
            with pytest.raises(ModelError, match="injected fault"):
                await llm.request(messages, settings=settings)
            with pytest.raises(ModelError, match="injected fault"):
                await stream()
            # several requests at once, all failing fast
            results = await asyncio.gather(
                *(llm.request(messages, settings=settings) for _ in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(r, ModelError) for r in results)
        response = await llm.request(messages, settings=settings)
        assert response.usage.output_tokens >= 1
        await llm.aclose()

    asyncio.run(main())
