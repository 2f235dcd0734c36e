"""One batched generation, step by step: prefix reuse, prefill, sampling, stop tokens and
strings, streaming text, cancellation, and what it leaves in the prefix cache.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from glm_agent.runtime.detokenize import IncrementalText, StopStrings
from glm_agent.runtime.passes import prefill
from glm_agent.runtime.prefix_cache import PrefixMatch, keep_sequences, load_prefixes
from glm_agent.runtime.sampling import SamplingParams, sample_next
from glm_agent.runtime.transformers_compat import cache_capacity

if TYPE_CHECKING:
    import torch

    from glm_agent.runtime.engine import Engine

__all__ = ["FinishReason", "Generation", "GenerationResult", "LogitsHook", "TokenStep"]

log = logging.getLogger("glm_agent.runtime")

FinishReason = Literal["stop", "length", "cancelled"]
"""Why a sequence ended."""
LogitsHook = Callable[["torch.Tensor", list[list[int]]], "torch.Tensor"]
"""Called with `[B, V]` logits and the tokens generated so far per row; returns logits."""


@dataclass
class TokenStep:
    """One generated token of one row, with the text it completes (may be empty)."""

    row: int
    token_id: int
    text: str


@dataclass
class GenerationResult:
    """One finished sequence.

    Attributes:
        token_ids: Generated ids (the stop token excluded).
        text: Decoded text, cut before a stop string (empty without a tokenizer).
        finish_reason: `stop` (stop token or string), `length` or `cancelled`.
        prompt_tokens: Prompt length in tokens.
        stop_token_id: The stop token that ended it, if one did.
        cached_tokens: Prompt tokens whose K/V came from the prefix cache (not prefilled).
    """

    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason = "length"
    prompt_tokens: int = 0
    stop_token_id: int | None = None
    cached_tokens: int = 0


class Generation:
    """One batched generation, iterated step by step (`Engine.stream` returns it).

    Iterating yields `TokenStep`s as tokens are produced; `results` holds each row's
    `GenerationResult` once the iteration is exhausted.
    """

    def __init__(
        self,
        engine: Engine,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        cancel: threading.Event | Sequence[threading.Event | None] | None,
        logits_hook: LogitsHook | None,
    ) -> None:
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        b = len(prompts)
        self.engine, self.hook = engine, logits_hook
        self.params = [params] * b if isinstance(params, SamplingParams) else list(params)
        self.cancel = list(cancel) if isinstance(cancel, Sequence) else [cancel] * b
        if len(self.params) != b or len(self.cancel) != b:
            raise ValueError(f"{b} prompts need 1 or {b} params and cancel events")
        self.prompts = [list(p) for p in prompts]
        self.results = [GenerationResult(prompt_tokens=len(p)) for p in self.prompts]
        self.max_new = max(p.max_new_tokens for p in self.params)
        self.matches: list[PrefixMatch] = []  # the cached prefixes this batch started from
        # Refuse before allocating anything: a clear ContextLengthError, never an OOM.
        engine.budget().check(max(map(len, self.prompts)), self.max_new, b)
        engine.make_room(b * (max(map(len, self.prompts)) + self.max_new))

    def __iter__(self) -> Iterator[TokenStep]:
        import torch

        with torch.inference_mode():
            yield from self._steps()

    def _reuse(self, cache: Any) -> int:
        """Copy cached prefixes into `cache`; returns the first slot to prefill."""
        store = self.engine.prefix_cache
        if store is None:
            return 0
        start, self.matches = load_prefixes(store, self.engine.model, cache, self.prompts)
        longest = max(map(len, self.prompts))
        for p, res in zip(self.prompts, self.results, strict=True):
            res.cached_tokens = max(0, start - (longest - len(p)))
        return start

    def _keep(self, cache: Any, generated: list[list[int]], fed: list[int]) -> None:
        """Leave each finished row's prompt and fed-back tokens in the prefix cache."""
        store = self.engine.prefix_cache
        if store is None:
            return
        longest = max(map(len, self.prompts))
        rows: list[tuple[int, list[int]] | None] = [
            (longest - len(p), p + g[:n]) if res.finish_reason != "cancelled" else None
            for p, g, n, res in zip(self.prompts, generated, fed, self.results, strict=True)
        ]
        try:
            keep_sequences(store, cache, rows)
        except Exception as e:  # the answer stands; only its reuse is lost
            log.warning("prefix cache: keeping a finished batch failed: %r", e)

    def _cancelled(self, r: int) -> bool:
        event = self.cancel[r]
        return event is not None and event.is_set()

    def _sample(
        self, logits: torch.Tensor, seen: torch.Tensor, gens: list[torch.Generator | None]
    ) -> list[int]:
        first = self.params[0]
        if all(p == first for p in self.params):  # the common case: one batched call
            pen = seen if first.repetition_penalty != 1.0 else None
            out: list[int] = sample_next(logits, first, gens[0], pen).tolist()
            return out
        return [
            int(sample_next(logits[r : r + 1], p, gens[r], seen[r : r + 1]))
            for r, p in enumerate(self.params)
        ]

    def _steps(self) -> Iterator[TokenStep]:
        import torch

        eng = self.engine
        b, longest = len(self.prompts), max(len(p) for p in self.prompts)
        dev = eng.device
        cache = eng.cache_for(b, longest + self.max_new)
        max_len = cache_capacity(cache)
        ids = torch.full((b, longest), eng.pad_token_id, dtype=torch.long, device=dev)
        padding: torch.Tensor | None = None
        real = torch.zeros((b, max_len), dtype=torch.bool, device=dev)
        for r, p in enumerate(self.prompts):
            ids[r, longest - len(p) :] = torch.tensor(p, dtype=torch.long, device=dev)
            real[r, longest - len(p) :] = True  # future slots stay "real": causality hides them
        if not bool(real.all()):
            padding = real
        # Same positions as transformers' generate: real tokens count from 0, pads get 1.
        positions = (real[:, :longest].long().cumsum(-1) - 1).masked_fill(~real[:, :longest], 1)
        next_pos = real[:, :longest].sum(-1, keepdim=True)  # [B, 1]

        gens: list[torch.Generator | None] = []
        for sp in self.params:
            gen = None
            if not sp.greedy:
                gen = torch.Generator(device=dev)
                gen.manual_seed(sp.seed if sp.seed is not None else torch.seed())
            gens.append(gen)
        # Prefill stops between chunks on a cancel event shared by all rows; with one event per
        # row, cancelled rows end at the first decode step instead.
        shared = self.cancel[0] if all(c is self.cancel[0] for c in self.cancel) else None
        try:
            s = self._reuse(cache)
            logits = prefill(
                eng.model,
                ids[:, s:],
                cache,
                padding,
                positions[:, s:],
                eng.prefill_chunk,
                shared,
                start=s,
            )
            yield from self._decode(cache, logits, ids, longest, padding, next_pos, gens)
        except Exception:
            # The cached K/V this batch started from may have had a part in the failure: it
            # is not offered to anyone again.
            store = eng.prefix_cache
            if store is not None:
                for m in self.matches:
                    store.discard(m)
            raise

    def _decode(
        self,
        cache: Any,
        logits: torch.Tensor | None,
        ids: torch.Tensor,
        longest: int,
        padding: torch.Tensor | None,
        next_pos: torch.Tensor,
        gens: list[torch.Generator | None],
    ) -> Iterator[TokenStep]:
        import torch

        eng = self.engine
        b, dev = len(self.prompts), eng.device
        texts = [IncrementalText(eng.decode) if eng.decode else None for _ in range(b)]
        stops = [StopStrings(sp.stop) for sp in self.params]
        done = [False] * b
        generated: list[list[int]] = [[] for _ in range(b)]
        fed = [0] * b  # generated tokens written back into the cache, per row
        seen = ids
        for step in range(self.max_new):
            for r in range(b):
                if not done[r] and (logits is None or self._cancelled(r)):
                    self.results[r].finish_reason, done[r] = "cancelled", True
            if all(done):
                break
            assert logits is not None
            if self.hook is not None:
                logits = self.hook(logits, generated)
            for r, t in enumerate(self._sample(logits, seen, gens)):
                if done[r]:
                    continue
                yield from self._accept(r, t, texts[r], stops[r], done, generated)
            if all(done):
                break
            tok = torch.tensor(
                [
                    g[-1] if g and not d else eng.pad_token_id
                    for g, d in zip(generated, done, strict=True)
                ],
                dtype=torch.long,
                device=dev,
            )  # [B]
            seen = torch.cat([seen, tok[:, None]], dim=1)
            slot = torch.full((1,), longest + step, dtype=torch.long, device=dev)
            logits = eng._decode_fn(eng.model, tok[:, None], cache, padding, next_pos, slot)
            next_pos = next_pos + 1
            fed = [n + (not d) for n, d in zip(fed, done, strict=True)]
        for r in range(b):
            res = self.results[r]
            text, stop = texts[r], stops[r]
            if text is not None and not stop.stopped and res.stop_token_id is None:
                tail = stop.feed(text.flush()) + stop.flush()
                res.text += tail
                if tail:
                    yield TokenStep(r, -1, tail)
            res.token_ids = generated[r]
        self._keep(cache, generated, fed)

    def _accept(
        self,
        r: int,
        t: int,
        text: IncrementalText | None,
        stop: StopStrings,
        done: list[bool],
        generated: list[list[int]],
    ) -> Iterator[TokenStep]:
        res, params = self.results[r], self.params[r]
        if t in params.stop_token_ids:
            res.finish_reason, res.stop_token_id, done[r] = "stop", t, True
            if text is not None:
                tail = stop.feed(text.flush()) + stop.flush()
                res.text += tail
                if tail:
                    yield TokenStep(r, -1, tail)
            return
        generated[r].append(t)
        delta = stop.feed(text.add(t)) if text is not None else ""
        res.text += delta
        yield TokenStep(r, t, delta)
        if stop.stopped:
            res.finish_reason, done[r] = "stop", True
        elif len(generated[r]) >= params.max_new_tokens:
            res.finish_reason, done[r] = "length", True
