"""Fixtures of the runtime tests: tiny random GLMs (tiny configs, real GlmConfig classes)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GLM4_TOKENIZER = SHARED / "glm" / "glm-4-9b-chat" / "tokenizer.model"
MODEL_TYPES = ("glm", "glm4", "glm4_moe")

# Two cores shared by several test areas: one thread keeps tiny-model timings predictable.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


@pytest.fixture(scope="session")
def make_tiny_model() -> Callable[..., Any]:
    """Build (and cache) a tiny random causal LM of a model type with a small vocabulary."""
    from transformers import AutoModelForCausalLM

    from glm_agent.runtime import tiny_config

    cache: dict[tuple[Any, ...], Any] = {}

    def make(model_type: str = "glm", vocab_size: int = 1024, **overrides: Any) -> Any:
        key = (model_type, vocab_size, tuple(sorted(overrides.items())))
        if key not in cache:
            torch.manual_seed(0)
            config = tiny_config(model_type, vocab_size, **overrides)
            model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
            cache[key] = model.eval()
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_glm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny_glm checkpoint (real vocabulary and tokenizer) written once per session."""
    if not GLM4_TOKENIZER.is_file():
        pytest.skip(f"needs the GLM-4 tokenizer at {GLM4_TOKENIZER}")
    pytest.importorskip("glm_agent.glm.tokenizer")
    from glm_agent.runtime import tiny_glm

    return tiny_glm(tmp_path_factory.mktemp("ckpt") / "tiny", tokenizer_path=GLM4_TOKENIZER)
