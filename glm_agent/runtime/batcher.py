"""`Batcher`: requests that arrive while the model is busy run together as one static batch.

One worker thread owns the engine. Each round it takes every queued job (up to
`max_batch_size`, and only as many as the context budget holds together), runs them as one
left-padded batch, streams each row's text to its own callback and resolves its future.

A worker never dies silently: a batch that raises fails each of its jobs with a `ModelError`
naming the cause, and if the worker thread itself dies, every job still queued fails the same
way at once and the next `submit` starts a fresh worker.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from glm_agent.exceptions import ContextLengthError, GlmAgentError, ModelError
from glm_agent.runtime.budget import ContextBudget
from glm_agent.runtime.engine import GenerationResult, LogitsHook, TokenStep
from glm_agent.runtime.sampling import SamplingParams

__all__ = ["BatchEngine", "Batcher"]


class _Run(Iterable[TokenStep], Protocol):
    results: list[GenerationResult]


class BatchEngine(Protocol):
    """What a batcher runs: `Engine`, or `VisionEngine` for vision checkpoints."""

    def budget(self) -> ContextBudget: ...

    def stream(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        *,
        cancel: threading.Event | Sequence[threading.Event | None] | None = None,
        logits_hook: LogitsHook | None = None,
    ) -> _Run: ...


log = logging.getLogger("glm_agent.runtime")


def worker_error(error: BaseException) -> BaseException:
    """What a waiting request gets when generation fails under it.

    Our own errors (a `ContextLengthError`, say) pass through as they are; anything else
    becomes a `ModelError` that names the cause and chains it.
    """
    if isinstance(error, GlmAgentError):
        return error
    wrapped = ModelError(f"local generation failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


@dataclass
class _Job:
    ids: Sequence[int]  # a `VisionPrompt` keeps its pixels: never copied into a list
    params: SamplingParams
    cancel: threading.Event
    on_text: Callable[[str], None] | None
    future: Future[GenerationResult] = field(default_factory=Future)


class Batcher:
    """Serve many requests on one engine with static batching.

    Args:
        engine: The engine to run.
        max_batch_size: Most sequences in one batch.
        logits_hook: Optional hook on each step's logits (read at the start of every batch).
    """

    def __init__(
        self, engine: BatchEngine, max_batch_size: int = 8, logits_hook: LogitsHook | None = None
    ) -> None:
        self.engine = engine
        self.max_batch_size = max(1, max_batch_size)
        self.logits_hook = logits_hook
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=1000)
        """Sizes of the latest batches run (for metrics and tests)."""
        self._queue: collections.deque[_Job] = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(
        self,
        ids: Sequence[int],
        params: SamplingParams,
        *,
        cancel: threading.Event | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Future[GenerationResult]:
        """Queue one sequence; `on_text` gets its text deltas on the worker thread."""
        job = _Job(ids, params, cancel or threading.Event(), on_text)
        with self._wake:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run_worker, name="glm-agent-batcher", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return job.future

    def close(self) -> None:
        """Stop the worker after the current batch; queued jobs are cancelled."""
        with self._wake:
            self._closed = True
            for job in self._queue:
                job.future.cancel()
            self._queue.clear()
            self._wake.notify()

    def _take(self) -> list[_Job] | None:
        with self._wake:
            while not self._queue and not self._closed:
                self._wake.wait()
            if self._closed:
                return None
            batch: list[_Job] = []
            budget = self.engine.budget()
            for job in list(self._queue):
                if len(batch) == self.max_batch_size:
                    break
                if job.future.cancelled():  # its caller gave up while it waited
                    self._queue.remove(job)
                    continue
                if job.cancel.is_set():
                    self._queue.remove(job)
                    if job.future.set_running_or_notify_cancel():
                        job.future.set_result(GenerationResult(finish_reason="cancelled"))
                    continue
                trial = [*batch, job]
                try:
                    budget.check(
                        max(len(j.ids) for j in trial),
                        max(j.params.max_new_tokens for j in trial),
                        len(trial),
                    )
                except ContextLengthError:
                    if batch:
                        continue  # it waits for a smaller batch
                self._queue.remove(job)
                if job.future.set_running_or_notify_cancel():  # running: cancel() is refused
                    batch.append(job)  # alone, it raises its own ContextLengthError below
            return batch

    def _run_worker(self) -> None:
        try:
            self._loop()
        except BaseException as e:
            # The worker itself died (not one batch): nobody would ever serve what is queued,
            # so fail it now; the next submit starts a new worker.
            log.error("batcher worker died: %r", e)
            error = worker_error(e)
            with self._wake:
                queued, self._thread = list(self._queue), None
                self._queue.clear()
            for job in queued:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(error)
            if not isinstance(e, Exception):
                raise  # KeyboardInterrupt, SystemExit: not ours to swallow

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                run = self.engine.stream(
                    [j.ids for j in batch],
                    [j.params for j in batch],
                    cancel=[j.cancel for j in batch],
                    logits_hook=self.logits_hook,
                )
                for step in run:
                    callback = batch[step.row].on_text
                    if step.text and callback is not None:
                        callback(step.text)
                for job, result in zip(batch, run.results, strict=True):
                    job.future.set_result(result)
            except BaseException as e:  # every job of the failed batch gets the error
                log.warning("batch of %d failed: %r", len(batch), e)
                error = worker_error(e)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                if not isinstance(e, Exception):
                    raise  # the worker dies; _run_worker fails what is queued
