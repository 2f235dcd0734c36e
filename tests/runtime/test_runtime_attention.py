"""xformers attention: bias choice, 5-D GQA views and backend selection, checked with torch."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import pytest
import torch

from glm_agent.exceptions import MissingDependencyError
from glm_agent.runtime import BiasPlan, Engine, SamplingParams, choose_bias
from glm_agent.runtime.loading import resolve_attention
from glm_agent.runtime.xformers_attention import (
    gqa_5d_views,
    register_xformers,
    xformers_attention_forward,
    xformers_mask,
)

HAS_XFORMERS = importlib.util.find_spec("xformers") is not None


def test_bias_choice() -> None:
    assert choose_bias(16, 0, None) == BiasPlan("causal", 16, 16)
    assert choose_bias(16, 32, None) == BiasPlan("bottom_right", 16, 48)  # later prefill chunk
    assert choose_bias(1, 99, None) == BiasPlan("bottom_right", 1, 100)  # decode
    full = torch.ones(2, 128, dtype=torch.bool)
    assert choose_bias(4, 8, full).kind == "bottom_right"  # padding mask without padding
    padded = full.clone()
    padded[1, :3] = False
    plan = choose_bias(4, 8, padded)
    assert plan.kind == "tensor"
    assert plan.padding is not None and plan.padding.shape == (2, 12)


def _call_mask(fn: Callable[..., Any], q_len: int, q_offset: int, **kwargs: Any) -> Any:
    """Call a mask-interface function the way the installed transformers does."""
    import inspect

    from transformers.masking_utils import sdpa_mask

    if "cache_position" in inspect.signature(sdpa_mask).parameters:  # 4.57
        return fn(cache_position=torch.arange(q_offset, q_offset + q_len), **kwargs)
    return fn(q_length=q_len, q_offset=torch.tensor(q_offset), **kwargs)


@pytest.mark.parametrize(("q_len", "q_offset"), [(6, 0), (5, 7), (1, 20)])
@pytest.mark.parametrize("padded", [False, True])
def test_plan_matches_transformers_sdpa_mask(q_len: int, q_offset: int, padded: bool) -> None:
    from transformers.masking_utils import sdpa_mask

    kv = q_offset + q_len
    padding = torch.ones(2, kv, dtype=torch.bool)
    if padded:
        padding[0, :2] = False
    common = {"batch_size": 2, "kv_length": kv, "attention_mask": padding}
    plan = _call_mask(xformers_mask, q_len, q_offset, **common)
    expected = choose_bias(q_len, q_offset, padding)
    assert (plan.kind, plan.q_len, plan.kv_len) == (expected.kind, expected.q_len, expected.kv_len)
    ref = _call_mask(sdpa_mask, q_len, q_offset, allow_is_causal_skip=False, **common)
    assert ref is not None
    ours = plan.dense(2)
    seen = ref.any(dim=-1, keepdim=True)  # pad queries see nothing in transformers' mask...
    assert torch.equal(ours & seen, ref)
    assert bool(ours[~seen.expand_as(ours)].all())  # ...and everything in ours (no NaN rows)


def test_5d_views_share_storage_and_compute_gqa() -> None:
    b, hq, g, t, s, d = 2, 8, 2, 5, 32, 16
    q = torch.randn(b, hq, t, d)
    k = torch.randn(b, g, s, d)  # a static cache buffer: only the first kv_len slots are valid
    v = torch.randn(b, g, s, d)
    kv_len = 12
    q5, k5, v5 = gqa_5d_views(q, k, v, kv_len)
    assert q5.shape == (b, t, g, hq // g, d)
    assert k5.shape == v5.shape == (b, kv_len, g, hq // g, d)
    assert k5.stride(3) == 0 and v5.stride(3) == 0  # expanded, not repeated
    assert k5.data_ptr() == k.data_ptr()  # a view of the cache, no copy
    plan = choose_bias(t, kv_len - t, None)
    mask = plan.dense(b)  # [B, 1, T, L]
    # The attention xformers computes on these views, written out in torch.
    scores = torch.einsum("btghd,blghd->bghtl", q5, k5) / d**0.5
    scores = scores.masked_fill(~mask[:, None], float("-inf"))
    out = torch.einsum("bghtl,blghd->btghd", scores.softmax(-1), v5).reshape(b, t, hq, d)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q,
        k[:, :, :kv_len].repeat_interleave(hq // g, 1),
        v[:, :, :kv_len].repeat_interleave(hq // g, 1),
        attn_mask=mask,
    ).transpose(1, 2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_registration_adds_xformers_to_transformers() -> None:
    from transformers import AttentionInterface, AttentionMaskInterface

    register_xformers()
    assert AttentionInterface._global_mapping["xformers"] is xformers_attention_forward
    assert AttentionMaskInterface._global_mapping["xformers"] is xformers_mask


def test_backend_selection_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert resolve_attention(None, cpu) == "sdpa"
    assert resolve_attention("eager", cpu) == "eager"
    with pytest.raises(MissingDependencyError, match=r"glm-agent\[gpu\]"):
        resolve_attention("xformers", cpu)
    with pytest.raises(Exception, match="valid: xformers, sdpa, eager"):
        resolve_attention("flash", cpu)


@pytest.mark.skipif(HAS_XFORMERS, reason="checks the error shown without xformers")
def test_xformers_forward_without_xformers_names_the_extra() -> None:
    q = torch.zeros(1, 4, 2, 8)
    with pytest.raises(MissingDependencyError, match="xformers"):
        xformers_attention_forward(None, q, q, q, BiasPlan("causal", 2, 2))


def test_engine_reports_its_backend(make_tiny_model: Callable[..., Any]) -> None:
    model = make_tiny_model("glm")
    assert Engine(model).attention_backend == "sdpa"  # read from the model's config
    model.set_attn_implementation("eager")
    try:
        assert Engine(model).attention_backend == "eager"
    finally:
        model.set_attn_implementation("sdpa")


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available() or not HAS_XFORMERS, reason="needs CUDA and xformers"
)
def test_xformers_engine_matches_sdpa_on_gpu(make_tiny_model: Callable[..., Any]) -> None:
    from transformers import AutoModelForCausalLM

    from glm_agent.runtime import tiny_config

    register_xformers()
    torch.manual_seed(0)
    config = tiny_config("glm", 1024)
    ref = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").cuda().eval()
    ours = AutoModelForCausalLM.from_config(config, attn_implementation="xformers").cuda().eval()
    ours.load_state_dict(ref.state_dict())
    prompts = [list(range(3, 60)), list(range(10, 30))]
    params = SamplingParams(max_new_tokens=12)
    a = Engine(ref, prefill_chunk=16).generate_batch(prompts, params)
    b = Engine(ours, attention_backend="xformers", prefill_chunk=16).generate_batch(prompts, params)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]


def _torch_5d_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The xformers path with the kernel written in torch: our plan and our 5-D views."""
    plan = attention_mask
    assert isinstance(plan, BiasPlan)  # transformers called our mask function, not sdpa's
    q5, k5, v5 = gqa_5d_views(query, key, value, plan.kv_len)
    scores = torch.einsum("btghd,blghd->bghtl", q5, k5) * scaling
    scores = scores.masked_fill(~plan.dense(query.shape[0])[:, None], float("-inf"))
    out = torch.einsum("bghtl,blghd->btghd", scores.softmax(-1), v5)
    return out.reshape(query.shape[0], query.shape[2], query.shape[1], -1), None


def test_xformers_plumbing_through_the_model_matches_sdpa(
    make_tiny_model: Callable[..., Any],
) -> None:
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register("xformers_torch_check", _torch_5d_attention)
    AttentionMaskInterface.register("xformers_torch_check", xformers_mask)
    model = make_tiny_model("glm4")
    prompts = [list(range(3, 40)), list(range(50, 61))]  # chunked prefill, decode, left padding
    params = SamplingParams(max_new_tokens=10)
    ref = Engine(model, prefill_chunk=16).generate_batch(prompts, params)
    model.set_attn_implementation("xformers_torch_check")
    try:
        engine = Engine(model, prefill_chunk=16)
        assert engine.attention_backend == "xformers_torch_check"
        ours = engine.generate_batch(prompts, params)
        single = Engine(model, prefill_chunk=16).generate(prompts[0], params)
    finally:
        model.set_attn_implementation("sdpa")
    assert [r.token_ids for r in ours] == [r.token_ids for r in ref]
    assert single.token_ids == ref[0].token_ids
