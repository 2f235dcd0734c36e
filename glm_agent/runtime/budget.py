"""Context budget: how many tokens of KV cache fit, and a refusal before one that does not.

KV bytes per token = 2 (K and V) * layers * kv_heads * head_dim * dtype bytes. The largest
context is the smaller of the model's own limit (`max_position_embeddings`: 131072, or 1M for
glm-4-9b-chat-1m) and what the free device memory holds after a safety reserve.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from glm_agent.exceptions import ContextLengthError

__all__ = [
    "ContextBudget",
    "context_budget",
    "free_memory_bytes",
    "kv_bytes_per_token",
]

_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def _dtype_bytes(dtype: Any) -> int:
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(sorted(_DTYPE_BYTES))}")
    return _DTYPE_BYTES[name]


def kv_bytes_per_token(config: Any, dtype: Any) -> int:
    """Bytes of KV cache one token takes in every layer.

    Args:
        config: A transformers config (`num_hidden_layers`, `num_key_value_heads`, `head_dim`).
        dtype: The cache dtype (`torch.bfloat16`, "float32"...).
    """
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * int(config.num_hidden_layers) * int(kv_heads) * int(head_dim) * _dtype_bytes(dtype)


def free_memory_bytes(device: Any) -> int:
    """Free memory on `device`: CUDA's free bytes, or the host's MemAvailable on CPU."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class ContextBudget:
    """What one model on one device can hold.

    Attributes:
        model_max: The model's own context limit (from its config).
        kv_bytes_per_token: KV cache bytes per token (all layers, K and V).
        free_bytes: Free device memory when measured.
        reserve_bytes: Memory kept back for activations, logits and the allocator.
        memory_tokens: Tokens of context (all sequences together) the free memory holds.
        activation_bytes_per_token: Bytes per context token planned besides the KV cache.
        reserve_fraction: Part of the free memory kept back.
    """

    model_max: int
    kv_bytes_per_token: int
    free_bytes: int
    reserve_bytes: int
    memory_tokens: int
    activation_bytes_per_token: int = 4096
    reserve_fraction: float = 0.1

    @property
    def max_tokens(self) -> int:
        """The largest context (prompt plus new tokens) of one sequence that fits both limits."""
        return min(self.model_max, self.memory_tokens)

    def missing_bytes(self, tokens: int) -> int:
        """Free memory lacking for `tokens` of context (all sequences together); 0 if they fit."""
        if tokens <= self.memory_tokens:
            return 0
        per_token = self.kv_bytes_per_token + self.activation_bytes_per_token
        needed = math.ceil(tokens * per_token / max(1.0 - self.reserve_fraction, 1e-9))
        return max(0, needed + 1 - self.free_bytes)

    def check(self, prompt_tokens: int, max_new_tokens: int, batch_size: int = 1) -> None:
        """Raise `ContextLengthError` unless the request fits, before anything is allocated."""
        needed = prompt_tokens + max_new_tokens
        if needed > self.model_max:
            raise ContextLengthError(
                f"request needs {needed} tokens ({prompt_tokens} prompt + {max_new_tokens} new) "
                f"but the model's context is {self.model_max}; shorten the prompt or max_tokens",
                needed=needed,
                limit=self.model_max,
            )
        fits = self.memory_tokens // max(batch_size, 1)
        if needed > fits:
            gib = self.free_bytes / 2**30
            raise ContextLengthError(
                f"request needs {needed} tokens x {batch_size} sequence(s) of KV cache "
                f"({self.kv_bytes_per_token} bytes/token) but {gib:.2f} GiB free memory holds "
                f"{fits} per sequence; shorten the prompt or max_tokens, or free device memory",
                needed=needed,
                limit=fits,
            )


def context_budget(
    config: Any,
    dtype: Any,
    device: Any,
    *,
    free_bytes: int | None = None,
    reserve_fraction: float = 0.1,
    activation_bytes_per_token: int | None = None,
) -> ContextBudget:
    """The context budget of `config` in `dtype` on `device`.

    Args:
        config: The model's transformers config.
        dtype: Cache dtype.
        device: Where the cache lives.
        free_bytes: Free memory to plan with (measured on `device` when None).
        reserve_fraction: Part of the free memory kept back for activations and allocator slack.
        activation_bytes_per_token: Extra bytes per context token besides the KV cache (default
            4096: a prefill chunk's attention-mask column, 2048 rows, with slack).
    """
    per_token = kv_bytes_per_token(config, dtype)
    if activation_bytes_per_token is None:
        activation_bytes_per_token = 4096
    free = free_memory_bytes(device) if free_bytes is None else free_bytes
    reserve = int(free * reserve_fraction)
    usable = max(free - reserve, 0)
    model_max = int(getattr(config, "max_position_embeddings", 0) or 131072)
    by_memory = usable // (per_token + activation_bytes_per_token)
    return ContextBudget(
        model_max=model_max,
        kv_bytes_per_token=per_token,
        free_bytes=free,
        reserve_bytes=reserve,
        memory_tokens=int(by_memory),
        activation_bytes_per_token=activation_bytes_per_token,
        reserve_fraction=reserve_fraction,
    )
