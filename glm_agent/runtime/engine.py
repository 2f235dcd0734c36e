"""The generation engine: one loaded causal LM, its context budget, its prefix cache, and
generation for one prompt or a left-padded static batch (see `generation`); the forward passes
themselves are plain functions (`passes`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from glm_agent.runtime.budget import ContextBudget, context_budget, free_memory_bytes
from glm_agent.runtime.generation import Generation, GenerationResult, LogitsHook, TokenStep
from glm_agent.runtime.passes import decode_step, new_cache, prefill
from glm_agent.runtime.prefix_cache import PrefixCache
from glm_agent.runtime.sampling import SamplingParams

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
        run = Generation(self, prompts, params, cancel, logits_hook)
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
    ) -> Generation:
        """Iterate `TokenStep`s as tokens are produced; `.results` is set when exhausted."""
        return Generation(self, prompts, params, cancel, logits_hook)
