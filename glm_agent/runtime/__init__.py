"""Local GLM inference: transformers model classes, xformers attention, static KV cache,
chunked prefill, sampling, streaming, static batching and prefix reuse (the K/V of earlier
requests' prompts and outputs, kept within a memory budget: see docs/runtime.md); and vision
checkpoints (`VisionEngine`: images in, one sequence at a time).

```python
from glm_agent.runtime import Engine, SamplingParams, load_model

loaded = load_model("zai-org/glm-4-9b-chat-hf")  # GPU: bf16 + xformers; CPU: fp32 + SDPA
engine = Engine(loaded.model)  # engine.attention_backend says which
result = engine.generate(prompt_ids, SamplingParams(max_new_tokens=256, stop_token_ids=(151329,)))
```

Chat-level use goes through `glm_agent.models.local.LocalGLM`. Importing this package does not
import torch: every name is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glm_agent.runtime.batcher import Batcher
    from glm_agent.runtime.budget import (
        ContextBudget,
        context_budget,
        free_memory_bytes,
        kv_bytes_per_token,
    )
    from glm_agent.runtime.detokenize import IncrementalText, StopStrings
    from glm_agent.runtime.engine import Engine
    from glm_agent.runtime.generation import Generation, GenerationResult, LogitsHook, TokenStep
    from glm_agent.runtime.loading import (
        ATTENTION_BACKENDS,
        SUPPORTED_MODEL_TYPES,
        VISION_MODEL_TYPES,
        LoadedModel,
        load_model,
        read_model_config,
    )
    from glm_agent.runtime.passes import decode_step, new_cache, prefill
    from glm_agent.runtime.prefix_cache import PrefixCache, PrefixCacheStats, PrefixMatch
    from glm_agent.runtime.sampling import SamplingParams, sample_next
    from glm_agent.runtime.tiny import GLM4_VOCAB_SIZE, tiny_config, tiny_glm
    from glm_agent.runtime.vision import VisionEngine, VisionPrompt, vision_prompt
    from glm_agent.runtime.xformers_attention import BiasPlan, choose_bias, register_xformers

__all__ = [
    "ATTENTION_BACKENDS",
    "GLM4_VOCAB_SIZE",
    "SUPPORTED_MODEL_TYPES",
    "VISION_MODEL_TYPES",
    "Batcher",
    "BiasPlan",
    "ContextBudget",
    "Engine",
    "Generation",
    "GenerationResult",
    "IncrementalText",
    "LoadedModel",
    "LogitsHook",
    "PrefixCache",
    "PrefixCacheStats",
    "PrefixMatch",
    "SamplingParams",
    "StopStrings",
    "TokenStep",
    "VisionEngine",
    "VisionPrompt",
    "choose_bias",
    "context_budget",
    "decode_step",
    "free_memory_bytes",
    "kv_bytes_per_token",
    "load_model",
    "new_cache",
    "prefill",
    "read_model_config",
    "register_xformers",
    "sample_next",
    "tiny_config",
    "tiny_glm",
    "vision_prompt",
]

_WHERE = {
    "Batcher": "batcher",
    "ATTENTION_BACKENDS": "loading",
    "GLM4_VOCAB_SIZE": "tiny",
    "SUPPORTED_MODEL_TYPES": "loading",
    "VISION_MODEL_TYPES": "loading",
    "BiasPlan": "xformers_attention",
    "ContextBudget": "budget",
    "Engine": "engine",
    "Generation": "generation",
    "GenerationResult": "generation",
    "IncrementalText": "detokenize",
    "LoadedModel": "loading",
    "LogitsHook": "generation",
    "PrefixCache": "prefix_cache",
    "PrefixCacheStats": "prefix_cache",
    "PrefixMatch": "prefix_cache",
    "SamplingParams": "sampling",
    "StopStrings": "detokenize",
    "TokenStep": "generation",
    "choose_bias": "xformers_attention",
    "context_budget": "budget",
    "decode_step": "passes",
    "free_memory_bytes": "budget",
    "kv_bytes_per_token": "budget",
    "load_model": "loading",
    "new_cache": "passes",
    "prefill": "passes",
    "read_model_config": "loading",
    "register_xformers": "xformers_attention",
    "sample_next": "sampling",
    "tiny_config": "tiny",
    "tiny_glm": "tiny",
    "VisionEngine": "vision",
    "VisionPrompt": "vision",
    "vision_prompt": "vision",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'glm_agent.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"glm_agent.runtime.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
