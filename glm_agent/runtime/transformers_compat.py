"""Where transformers releases differ, decided once for the whole runtime.

The runtime supports transformers 4.57 up to today's 5.x. Between them the causal LMs' forward
renamed `past_key_values` to `cache` (5.2x warns on the old name and drops it in 5.40),
dropped `cache_position` (the cache now counts its own length, so a prefill that starts after
a reused prefix must set that count), `StaticCache` changed how it reports its size (its
`early_initialization`, which allocates before the first write, kept its arguments), and
attention-mask functions get the query span as `cache_position` (4.57) or as `q_length` /
`q_offset` (5.x). Each difference is read off the installed classes themselves (signatures and
attributes), never off a version number, so a release that backports or reverts a change is
still handled.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "allocate_static_cache",
    "cache_capacity",
    "cache_keyword",
    "cache_kwargs",
    "mask_query_span",
    "new_static_cache",
    "seek_static_cache",
    "static_cache_tensors",
]


_KEYWORDS: dict[type[Any], tuple[str, bool]] = {}


def _forward_keywords(model_class: type[Any]) -> tuple[str, bool]:
    found = _KEYWORDS.get(model_class)
    if found is None:  # once per model class: a signature read costs more than a dict lookup
        params = inspect.signature(model_class.forward).parameters
        takes_slots = "cache_position" in params
        found = _KEYWORDS[model_class] = (
            "cache" if "cache" in params else "past_key_values",
            takes_slots,
        )
    return found


def cache_keyword(model: Any) -> str:
    """The keyword under which `model.forward` takes its KV cache: `cache` or `past_key_values`."""
    return _forward_keywords(type(model))[0]


def cache_kwargs(model: Any, cache: Any, slots: torch.Tensor | None) -> dict[str, Any]:
    """The keyword arguments that hand `cache` to `model.forward`.

    Args:
        model: The causal LM.
        cache: Its KV cache.
        slots: `[T]` cache slots this pass writes. 4.57 takes them as `cache_position` (else it
            guesses the filled length from non-zero keys of row 0, wrong under left padding);
            5.x tracks the length in the cache itself and has no such argument.
    """
    keyword, takes_slots = _forward_keywords(type(model))
    kwargs = {keyword: cache}
    if takes_slots and slots is not None:
        kwargs["cache_position"] = slots
    return kwargs


def new_static_cache(model: Any, max_len: int) -> Any:
    """A `StaticCache` of `max_len` slots per sequence (allocated on its first write)."""
    from transformers import StaticCache

    return StaticCache(config=model.config, max_cache_len=max_len)


def allocate_static_cache(
    cache: Any, model: Any, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Allocate a static cache now (zeros) and return each layer's `(keys, values)`.

    A `StaticCache` otherwise allocates on its first write; a prefill that starts after a
    reused prefix must write the prefix's K/V into it before that. Both 4.57 and 5.x take
    `early_initialization(batch_size, num_heads, head_dim, dtype, device)`; a layer already
    allocated (a reused, reset cache) is left as it is.

    Args:
        cache: A `StaticCache` from `new_static_cache`.
        model: The causal LM whose K/V it will hold (config, dtype and device are read off it).
        batch_size: Rows of the batch.

    Returns:
        Per layer, keys and values of shape `[B, kv_heads, slots, head_dim]`.
    """
    config = model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    param = next(model.parameters())
    if not all(layer.is_initialized for layer in cache.layers):
        cache.early_initialization(batch_size, kv_heads, head_dim, param.dtype, param.device)
    return static_cache_tensors(cache)


def static_cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's `(keys, values)` `[B, kv_heads, slots, head_dim]` of an allocated cache."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def seek_static_cache(cache: Any, length: int) -> None:
    """Make the cache's next write land at slot `length` (the slots before it are filled).

    5.x layers count what they hold (`cumulative_length`, a 0-d tensor updated in place so
    compiled graphs keep its address) and write there; 4.57 writes where `cache_position`
    says and keeps no count, so there is nothing to set.
    """
    for layer in cache.layers:
        count = getattr(layer, "cumulative_length", None)
        if count is None:
            continue
        if isinstance(count, int):
            layer.cumulative_length = length
        else:
            count.fill_(length)


def cache_capacity(cache: Any) -> int:
    """Slots per sequence of a static cache."""
    layer = cache.layers[0]
    if hasattr(layer, "get_max_length"):  # 5.x
        return int(layer.get_max_length())
    return int(cache.get_max_cache_shape())  # 4.57


def mask_query_span(q_length: int | None, q_offset: Any, cache_position: Any) -> tuple[int, int]:
    """`(queries, cached tokens before them)` from a mask-interface call of either convention.

    Args:
        q_length: Queries in this pass (5.x), or None.
        q_offset: Tokens cached before them (5.x; StaticCache reports a 0-d tensor).
        cache_position: `[T]` positions of the queries (4.57), or None.
    """
    if cache_position is not None:
        # one host sync per forward pass, as with the 0-d offset below
        return int(cache_position.shape[-1]), int(cache_position[0])
    if q_length is None:
        raise TypeError("a mask function needs q_length or cache_position")
    return q_length, int(q_offset)
