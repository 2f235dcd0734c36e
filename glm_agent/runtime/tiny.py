"""`tiny_glm`: a random-weight GLM with GLM-4's real vocabulary and special tokens.

It is a real checkpoint directory (config, safetensors, generation config, the real GLM-4
tokenizer) loaded through the same `from_pretrained` path as real checkpoints, so the whole
pipeline runs without weights. Its output is noise; loading it logs a warning saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from glm_agent.exceptions import UserError

__all__ = ["GLM4_SPECIAL", "GLM4_VOCAB_SIZE", "default_tokenizer_path", "tiny_config", "tiny_glm"]

log = logging.getLogger("glm_agent.runtime")

GLM4_VOCAB_SIZE = 151552
"""Rows of GLM-4's embedding table (the tokenizer has 151,329 BPE ranks plus specials)."""

GLM4_SPECIAL: dict[str, Any] = {
    "eos_token_id": [151329, 151336, 151338],  # <|endoftext|>, <|user|>, <|observation|>
    "pad_token_id": 151329,
}
"""GLM-4's stop and pad ids (glm-4-9b-chat config.json and generation_config.json)."""

_TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 131072,
}


def default_tokenizer_path() -> Path:
    """glm-4-9b-chat's tokenizer.model in the `shared` folder beside the repository."""
    return (
        Path(__file__).resolve().parents[3] / "shared" / "glm" / "glm-4-9b-chat" / "tokenizer.model"
    )


def tiny_config(
    model_type: str = "glm", vocab_size: int = GLM4_VOCAB_SIZE, **overrides: Any
) -> Any:
    """A tiny transformers config of `model_type` (`glm`, `glm4` or `glm4_moe`).

    Args:
        model_type: Which GLM architecture.
        vocab_size: Embedding rows (GLM-4's 151552 by default; smaller for fast tests).
        **overrides: Config fields to change.
    """
    from transformers import Glm4Config, Glm4MoeConfig, GlmConfig

    fields: dict[str, Any] = {**_TINY_SHAPE, **GLM4_SPECIAL, "vocab_size": vocab_size}
    if vocab_size <= GLM4_SPECIAL["pad_token_id"]:
        fields["pad_token_id"] = 0  # GLM's pad id is outside a small test vocabulary
        fields["eos_token_id"] = [vocab_size - 1]
    config: Any
    if model_type == "glm":
        config = GlmConfig(**{**fields, **overrides})
    elif model_type == "glm4":
        config = Glm4Config(**{**fields, "attention_bias": True, **overrides})
    elif model_type == "glm4_moe":
        moe = {
            "moe_intermediate_size": 32,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "first_k_dense_replace": 1,
            "use_qk_norm": True,
            "partial_rotary_factor": 0.5,
        }
        config = Glm4MoeConfig(**{**fields, **moe, **overrides})
    else:
        raise UserError(f"unknown model_type {model_type!r}; valid: glm, glm4, glm4_moe")
    config.glm_agent_tiny = True  # read back by load_model: warn that the output is noise
    return config


def tiny_glm(
    out_dir: str | Path,
    *,
    model_type: str = "glm",
    tokenizer_path: str | Path | None = None,
    vocab_size: int = GLM4_VOCAB_SIZE,
    seed: int = 0,
    chat_template: str | None = None,
    **overrides: Any,
) -> Path:
    """Build a random-weight GLM and save it as a normal checkpoint directory.

    Args:
        out_dir: Directory to write (created).
        model_type: `glm`, `glm4` or `glm4_moe`.
        tokenizer_path: GLM-4 `tokenizer.model` (tiktoken ranks); defaults to the shared copy.
        vocab_size: Embedding rows (GLM-4's real 151552 by default).
        seed: Seed of the random weights.
        chat_template: Optional chat template to store with the tokenizer.
        **overrides: Config fields to change.

    Returns:
        The checkpoint directory, ready for `load_model` / `LocalGLM`.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from glm_agent.glm.tokenizer import GLMTokenizer

    tok_file = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
    if not tok_file.is_file():
        raise UserError(
            f"GLM-4 tokenizer not found at {str(tok_file)!r}; pass tokenizer_path= the "
            "tokenizer.model of glm-4-9b-chat (tiktoken BPE ranks)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = tiny_config(model_type, vocab_size, **overrides)
    torch.manual_seed(seed)
    auto: Any = AutoModelForCausalLM  # untyped classmethods
    model = auto.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    eos = config.eos_token_id
    gen_cls: Any = GenerationConfig
    gen_cls(eos_token_id=eos, pad_token_id=config.pad_token_id).save_pretrained(out)
    tok = GLMTokenizer.from_tiktoken_file(tok_file)
    tok.save_pretrained(out)
    if chat_template is not None:
        (out / "chat_template.jinja").write_text(chat_template)
    log.warning("tiny_glm wrote %s: random weights, its output is noise", out)
    return out
