"""Context budget: KV bytes per token, the largest context, refusals before allocation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from glm_agent.exceptions import ContextLengthError
from glm_agent.runtime import Engine, SamplingParams, context_budget, kv_bytes_per_token

SHARED_CONFIG = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "glm"
    / "glm-4-9b-chat"
    / ("config.json")
)


def _glm4_9b_config() -> Any:
    from transformers import GlmConfig

    if not SHARED_CONFIG.is_file():
        pytest.skip(f"needs {SHARED_CONFIG}")
    raw = json.loads(SHARED_CONFIG.read_text())
    return GlmConfig(
        num_hidden_layers=raw["num_layers"],
        num_key_value_heads=raw["multi_query_group_num"],
        head_dim=raw["kv_channels"],
        hidden_size=raw["hidden_size"],
        num_attention_heads=raw["num_attention_heads"],
        max_position_embeddings=raw["seq_length"],
    )


@pytest.mark.shared
def test_glm4_9b_kv_bytes_and_context() -> None:
    config = _glm4_9b_config()
    # 2 (K, V) * 40 layers * 2 KV heads * 128 head dim * 2 bytes (bf16)
    assert kv_bytes_per_token(config, torch.bfloat16) == 2 * 40 * 2 * 128 * 2 == 40960
    assert kv_bytes_per_token(config, "float32") == 81920
    roomy = context_budget(config, torch.bfloat16, "cpu", free_bytes=80 * 2**30)
    assert roomy.max_tokens == 131072  # the model's own limit binds
    tight = context_budget(config, torch.bfloat16, "cpu", free_bytes=2 * 2**30)
    assert 30_000 < tight.max_tokens < 2 * 2**30 // 40960  # memory binds, minus the reserve


def test_one_million_context_from_config() -> None:
    from transformers import GlmConfig

    config = GlmConfig(max_position_embeddings=1048576)
    assert context_budget(config, torch.bfloat16, "cpu", free_bytes=2**40).max_tokens == 1048576


def test_refusals_name_the_limit() -> None:
    from glm_agent.runtime import tiny_config

    budget = context_budget(
        tiny_config("glm", 1024, max_position_embeddings=512), "float32", "cpu", free_bytes=10**9
    )
    budget.check(500, 12)
    with pytest.raises(ContextLengthError, match="context is 512") as info:
        budget.check(500, 13)
    assert info.value.needed == 513 and info.value.limit == 512
    small = context_budget(tiny_config("glm", 1024), "float32", "cpu", free_bytes=2**20)
    with pytest.raises(ContextLengthError, match="free memory holds"):
        small.check(small.max_tokens, 1)
    small.check(small.max_tokens - 1, 1)
    with pytest.raises(ContextLengthError):
        small.check(small.max_tokens // 2, 1, batch_size=3)


def test_engine_refuses_before_allocating(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    engine = Engine(model, memory_limit=2**20)
    limit = engine.budget().max_tokens
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        with pytest.raises(ContextLengthError):
            engine.generate([1] * limit, SamplingParams(max_new_tokens=8))
    finally:
        handle.remove()
    assert calls == []  # refused before any forward pass (and before any cache)
    assert len(engine.generate([1] * 8, SamplingParams(max_new_tokens=2)).token_ids) == 2
