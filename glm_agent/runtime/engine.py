"""The generation engine: static KV cache, chunked prefill, last-position logits, sampling,
stop tokens and strings, streaming, cancellation, static batching (left padding) and prefix
reuse (the K/V of earlier requests' prompts and outputs, see `prefix_cache`).

In the style of gpt-fast: `prefill` and `decode_step` are plain functions over a transformers
causal LM and a preallocated `StaticCache`; `Engine` only strings them together per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from glm_agent.runtime.budget import ContextBudget, context_budget, free_memory_bytes
from glm_agent.runtime.detokenize import IncrementalText, StopStrings
from glm_agent.runtime.prefix_cache import (
    PrefixCache,
    PrefixMatch,
    keep_sequences,
    load_prefixes,
)
from glm_agent.runtime.sampling import SamplingParams, sample_next
from glm_agent.runtime.transformers_compat import (
    cache_capacity,
    cache_kwargs,
    new_static_cache,
    seek_static_cache,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "Engine",
    "GenerationResult",
    "LogitsHook",
    "TokenStep",
    "decode_step",
    "new_cache",
    "prefill",
]

log = logging.getLogger("glm_agent.runtime")

FinishReason = Literal["stop", "length", "cancelled"]
LogitsHook = Callable[["torch.Tensor", list[list[int]]], "torch.Tensor"]
"""Called with `[B, V]` logits and the tokens generated so far per row; returns logits."""


def new_cache(model: Any, batch_size: int, max_len: int) -> Any:
    """A preallocated `StaticCache` of `max_len` slots per sequence (allocated on first write)."""
    return new_static_cache(model, max_len)


def _forward(
    model: Any,
    ids: torch.Tensor,
    cache: Any,
    padding: torch.Tensor | None,
    positions: torch.Tensor,
    slots: torch.Tensor | None,
) -> torch.Tensor:
    # ids, positions: [B, T]; padding: [B, S] bool over cache slots, or None when nothing is
    # padded; slots: [T] the cache slots this pass writes (None: the cache knows)
    out = model(
        input_ids=ids,
        attention_mask=padding,
        position_ids=positions,
        use_cache=True,
        **cache_kwargs(model, cache, slots),
        logits_to_keep=1,  # lm_head on the last position only: never [T, 151552] logits
    )
    logits: torch.Tensor = out.logits[:, -1].float()  # [B, V]
    return logits


def prefill(
    model: Any,
    ids: torch.Tensor,
    cache: Any,
    padding: torch.Tensor | None,
    positions: torch.Tensor,
    chunk: int,
    cancel: threading.Event | None = None,
    *,
    start: int = 0,
) -> torch.Tensor | None:
    """Write the prompt into the cache in chunks; return the last position's logits `[B, V]`.

    Attention per chunk is over `[chunk, cached + chunk]`, so memory grows linearly with the
    prompt. Returns None when cancelled between chunks.

    Args:
        model: The causal LM.
        ids: `[B, T]` tokens to write at cache slots `[start, start + T)`.
        cache: Its static cache; slots below `start` already hold K/V (a reused prefix).
        padding: `[B, S]` bool over cache slots (True: real token), or None.
        positions: `[B, T]` position ids of `ids`.
        chunk: Tokens per forward pass.
        cancel: Checked between chunks.
        start: The first slot written.
    """
    import torch

    t = ids.shape[1]
    if start:
        seek_static_cache(cache, start)
    logits: torch.Tensor | None = None
    for a in range(0, t, chunk):
        if cancel is not None and cancel.is_set():
            return None
        b = min(a + chunk, t)
        slots = torch.arange(start + a, start + b, device=ids.device)
        logits = _forward(model, ids[:, a:b], cache, padding, positions[:, a:b], slots)
    return logits


def decode_step(
    model: Any,
    tokens: torch.Tensor,
    cache: Any,
    padding: torch.Tensor | None,
    positions: torch.Tensor,
    slot: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token per row through the model: tokens, positions `[B, 1]` -> logits `[B, V]`.

    `slot` (`[1]`) is the cache slot written; None lets the cache count its own length.
    """
    return _forward(model, tokens, cache, padding, positions, slot)


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


class Engine:
    """Generation over one loaded causal LM.

    Args:
        model: A transformers causal LM (GLM, GLM-4, GLM-4-MoE) in eval mode.
        decode: Token ids to text (for streaming text and stop strings); None: ids only.
        attention_backend: Reported backend; None: the model's `config._attn_implementation`.
        prefill_chunk: Prompt tokens per prefill forward pass.
        compile_decode: Compile the decode step (CUDA graphs through torch.compile) on GPU.
        pad_token_id: Id used for left padding in batches.
        memory_limit: Memory to plan the context budget with; None: the device's free memory,
            measured before every request.
        reuse_cache: Keep KV cache buffers (in 1024-slot buckets) between requests and reset
            them instead of allocating; default: on when decode is compiled, so compiled
            graphs and CUDA graphs see the same cache addresses each time.
        prefix_cache_bytes: Most bytes of K/V the prefix cache keeps between requests (a new
            request prefills only what follows its longest cached prefix); 0 turns prefix
            reuse off; None: a quarter of `memory_limit`, or of the device's free memory now.
    """

    def __init__(
        self,
        model: Any,
        *,
        decode: Callable[[Sequence[int]], str] | None = None,
        attention_backend: str | None = None,
        prefill_chunk: int = 2048,
        compile_decode: bool = False,
        pad_token_id: int = 0,
        memory_limit: int | None = None,
        reuse_cache: bool | None = None,
        prefix_cache_bytes: int | None = None,
    ) -> None:
        self.model = model
        self.decode = decode
        if attention_backend is None:
            attention_backend = str(getattr(model.config, "_attn_implementation", None) or "sdpa")
        self.attention_backend = attention_backend
        self.prefill_chunk = prefill_chunk
        self.pad_token_id = pad_token_id
        self.memory_limit = memory_limit
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self._decode_fn: Callable[..., torch.Tensor] = decode_step
        if compile_decode and self.device.type == "cuda" and attention_backend == "sdpa":
            import torch

            # Our xformers mask reads the cache offset on the host: it stays eager.
            self._decode_fn = torch.compile(decode_step, mode="reduce-overhead")
        compiled = self._decode_fn is not decode_step
        self.reuse_cache = compiled if reuse_cache is None else reuse_cache
        self._caches: dict[tuple[int, int], Any] = {}
        if prefix_cache_bytes is None:
            free = memory_limit if memory_limit is not None else free_memory_bytes(self.device)
            prefix_cache_bytes = free // 4
        self.prefix_cache: PrefixCache | None = (
            PrefixCache(prefix_cache_bytes) if prefix_cache_bytes > 0 else None
        )
        """K/V kept between requests (None: prefix reuse is off)."""
        log.info(
            "engine on %s (%s), attention backend: %s", self.device, self.dtype, attention_backend
        )

    def cache_for(self, batch_size: int, max_len: int) -> Any:
        """A static cache of at least `max_len` slots: reused and reset, or new."""
        if not self.reuse_cache:
            return new_cache(self.model, batch_size, max_len)
        size = -(-max_len // 1024) * 1024  # few distinct shapes for compiled decode
        cache = self._caches.get((batch_size, size))
        if cache is None:
            cache = self._caches[(batch_size, size)] = new_cache(self.model, batch_size, size)
        else:
            cache.reset()
        return cache

    def budget(self) -> ContextBudget:
        """The context budget of this model on its device, measured now.

        Memory held by the prefix cache counts as free: a request that needs it evicts
        prefixes (`make_room`) rather than being refused.
        """
        free = self.memory_limit
        if free is None and self.prefix_cache is not None and self.prefix_cache.bytes:
            free = free_memory_bytes(self.device) + self.prefix_cache.bytes
        return context_budget(self.model.config, self.dtype, self.device, free_bytes=free)

    def make_room(self, tokens: int) -> None:
        """Evict cached prefixes until `tokens` of request context fit in free memory.

        Only with a measured budget (`memory_limit` None): a given limit plans request K/V
        alone, and the prefix cache's own cap comes on top of it.
        """
        store = self.prefix_cache
        if store is None or self.memory_limit is not None or not store.bytes:
            return
        free = free_memory_bytes(self.device)
        bare = context_budget(self.model.config, self.dtype, self.device, free_bytes=free)
        missing = bare.missing_bytes(tokens)
        if missing > 0:
            store.evict(missing)

    def generate(
        self,
        prompt: Sequence[int],
        params: SamplingParams,
        *,
        cancel: threading.Event | None = None,
        logits_hook: LogitsHook | None = None,
    ) -> GenerationResult:
        """Generate for one prompt and return the finished sequence."""
        return self.generate_batch([prompt], params, cancel=cancel, logits_hook=logits_hook)[0]

    def generate_batch(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        *,
        cancel: threading.Event | Sequence[threading.Event | None] | None = None,
        logits_hook: LogitsHook | None = None,
    ) -> list[GenerationResult]:
        """Generate for several prompts at once (left-padded static batch).

        Args:
            prompts: Token ids of each sequence.
            params: One `SamplingParams` for all rows, or one per row.
            cancel: One event for all rows, or one per row (a set event ends its row).
            logits_hook: Optional hook on each step's logits.
        """
        run = _Run(self, prompts, params, cancel, logits_hook)
        for _ in run:
            pass
        return run.results

    def stream(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams],
        *,
        cancel: threading.Event | Sequence[threading.Event | None] | None = None,
        logits_hook: LogitsHook | None = None,
    ) -> _Run:
        """Iterate `TokenStep`s as tokens are produced; `.results` is set when exhausted."""
        return _Run(self, prompts, params, cancel, logits_hook)


class _Run:
    """One batched generation, iterated step by step."""

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
