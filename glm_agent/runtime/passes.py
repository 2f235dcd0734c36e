"""Forward passes over a preallocated static cache, in the style of gpt-fast: plain functions
that write a prompt in chunks (`prefill`) or one token per row (`decode_step`) and return the
last position's logits. `Engine` strings them together per request.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from glm_agent.runtime.transformers_compat import cache_kwargs, new_static_cache, seek_static_cache

if TYPE_CHECKING:
    import torch

__all__ = ["decode_step", "new_cache", "prefill"]


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
