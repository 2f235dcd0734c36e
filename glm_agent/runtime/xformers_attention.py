"""xformers `memory_efficient_attention` as a transformers attention implementation.

`register_xformers()` adds an `"xformers"` entry to transformers' `AttentionInterface` and
`AttentionMaskInterface`. transformers only builds a mask for implementations with a registered
mask function, so ours returns a small `BiasPlan` (no dense `[T, S]` tensor) that the attention
function turns into an xformers bias:

- first prefill chunk, no padding: `LowerTriangularMask` (plain causal);
- later chunks and decode over the preallocated cache, no padding: keys sliced to the valid
  length and `LowerTriangularFromBottomRightMask` (queries aligned to the last keys);
- left-padded batches: an additive tensor bias of `[B, 1, 1, T, L]` expanded to every head.

GQA uses xformers' 5-D layout `[B, M, G, H, K]`: K/V heads are groups `G` and are expanded with
stride 0 over the query heads of each group, so there is no `repeat_kv` copy. The planning and
the 5-D views are plain torch and tested without xformers; only `xformers_attention_forward`
imports xformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from glm_agent.exceptions import MissingDependencyError
from glm_agent.runtime.transformers_compat import mask_query_span

if TYPE_CHECKING:
    import torch

__all__ = [
    "BiasPlan",
    "choose_bias",
    "gqa_5d_views",
    "register_xformers",
    "xformers_attention_forward",
    "xformers_available",
    "xformers_mask",
]

BiasKind = Literal["causal", "bottom_right", "tensor"]


@dataclass(frozen=True)
class BiasPlan:
    """Which xformers bias one forward pass needs; passed to every layer as `attention_mask`.

    Attributes:
        kind: `causal`, `bottom_right` (queries aligned to the last `kv_len` keys) or `tensor`.
        q_len: Query tokens in this forward pass (`T`).
        kv_len: Valid keys in the cache after this pass (`L = q_offset + T`).
        padding: `[B, L]` bool, True for real tokens; only for `tensor`.
    """

    kind: BiasKind
    q_len: int
    kv_len: int
    padding: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Mask shape for tensor-like consumers (transformers reads `.shape` on masks)."""
        return (self.q_len, self.kv_len)

    def dense(self, batch_size: int, device: Any = None) -> torch.Tensor:
        """The plan as a boolean `[B, 1, T, L]` mask (True = attend), for checks and fallbacks."""
        import torch

        q_pos = torch.arange(self.kv_len - self.q_len, self.kv_len, device=device)
        k_pos = torch.arange(self.kv_len, device=device)
        causal = k_pos[None, :] <= q_pos[:, None]  # [T, L]
        mask = causal[None, None].expand(batch_size, 1, self.q_len, self.kv_len)
        if self.padding is not None:
            mask = mask & self.padding[:, None, None, : self.kv_len].to(device=mask.device)
            # A pad query sees no key at all: softmax over nothing is NaN, and NaN K/V at pad
            # slots poison real rows (0 * NaN). Such rows attend everywhere instead, as
            # transformers' own masks do; their outputs are never used.
            mask = mask | ~mask.any(dim=-1, keepdim=True)
        return mask


def choose_bias(q_len: int, q_offset: int, padding: torch.Tensor | None) -> BiasPlan:
    """Plan the bias for `q_len` queries written after `q_offset` cached tokens.

    Args:
        q_len: Query tokens in this pass.
        q_offset: Tokens already in the cache before this pass.
        padding: Optional `[B, S]` bool padding mask over cache slots (True = real token).

    Returns:
        The bias plan; `tensor` only when some valid slot is padding.
    """
    kv_len = q_offset + q_len
    if padding is not None and not bool(padding[:, :kv_len].all()):
        return BiasPlan("tensor", q_len, kv_len, padding[:, :kv_len])
    if q_offset == 0:
        return BiasPlan("causal", q_len, kv_len)
    return BiasPlan("bottom_right", q_len, kv_len)


def xformers_mask(
    batch_size: int,
    q_length: int | None = None,
    kv_length: int = 0,
    q_offset: Any = 0,
    kv_offset: int = 0,
    attention_mask: torch.Tensor | None = None,
    *,
    cache_position: torch.Tensor | None = None,
    **kwargs: Any,
) -> BiasPlan:
    """transformers mask-interface entry for `"xformers"`: a `BiasPlan`, never a dense mask."""
    q_len, offset = mask_query_span(q_length, q_offset, cache_position)
    return choose_bias(q_len, offset, attention_mask)


def gqa_5d_views(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, kv_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """transformers' `[B, H, T, D]` tensors as xformers' GQA layout `[B, M, G, H/G, D]`.

    K/V are sliced to the `kv_len` valid cache slots and expanded with stride 0 over the query
    heads of their group, so no copy of the cache is made.
    """
    b, hq, t, d = query.shape
    g = key.shape[1]
    # q: [B, Hq, T, D] -> [B, T, G, Hq/G, D]
    q5 = query.transpose(1, 2).reshape(b, t, g, hq // g, d)
    # k, v: [B, G, S, D] -> [B, L, G, 1, D] -> expand (stride 0) -> [B, L, G, Hq/G, D]
    k5 = key[:, :, :kv_len].transpose(1, 2).unsqueeze(3).expand(b, kv_len, g, hq // g, d)
    v5 = value[:, :, :kv_len].transpose(1, 2).unsqueeze(3).expand(b, kv_len, g, hq // g, -1)
    return q5, k5, v5


def _tensor_bias(plan: BiasPlan, q5: torch.Tensor, groups: int, heads: int) -> torch.Tensor:
    import torch

    b = q5.shape[0]
    # xformers wants the bias' last dim 8-aligned in memory: allocate padded, then slice.
    aligned = (plan.kv_len + 7) // 8 * 8
    storage = torch.full((b, plan.q_len, aligned), float("-inf"), dtype=q5.dtype, device=q5.device)
    bias = storage[:, :, : plan.kv_len]
    bias.masked_fill_(plan.dense(b, q5.device)[:, 0], 0.0)
    # [B, T, L] -> [B, 1, 1, T, L] -> expand (stride 0) -> [B, G, H/G, T, L]
    return bias[:, None, None].expand(b, groups, heads, plan.q_len, plan.kv_len)


def xformers_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention-interface entry: `[B, H, T, D]` in, `[B, T, H, D]` out."""
    try:
        from xformers import ops as xops
        from xformers.ops import fmha
    except ImportError as e:
        raise MissingDependencyError("xformers", "gpu", "xformers attention") from e
    plan = attention_mask
    if not isinstance(plan, BiasPlan):  # called outside our mask path: assume a causal prefill
        plan = BiasPlan("causal", query.shape[2], query.shape[2])
    q5, k5, v5 = gqa_5d_views(query, key, value, plan.kv_len)
    bias: Any
    if plan.kind == "causal":
        bias = fmha.attn_bias.LowerTriangularMask()
    elif plan.kind == "bottom_right":
        bias = fmha.attn_bias.LowerTriangularFromBottomRightMask()
    else:
        bias = _tensor_bias(plan, q5, q5.shape[2], q5.shape[3])
    out = xops.memory_efficient_attention(q5, k5, v5, attn_bias=bias, p=dropout, scale=scaling)
    b, t = query.shape[0], query.shape[2]
    return out.reshape(b, t, query.shape[1], -1), None  # [B, T, Hq, D]


def xformers_available() -> bool:
    """Whether xformers imports and a CUDA device is present (its kernels need one)."""
    try:
        import torch
        import xformers.ops  # noqa: F401
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def register_xformers() -> None:
    """Register `"xformers"` with transformers' attention and mask interfaces (idempotent)."""
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register("xformers", xformers_attention_forward)
    AttentionMaskInterface.register("xformers", xformers_mask)
