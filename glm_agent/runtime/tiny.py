"""`tiny_glm`: a random-weight GLM with GLM-4's real vocabulary and special tokens.

It is a real checkpoint directory (config, safetensors, generation config, the real GLM-4
tokenizer) loaded through the same `from_pretrained` path as real checkpoints, so the whole
pipeline runs without weights. Its output is noise; loading it logs a warning saying so.

The vision model types (`glm4v`, `glm4v_moe`, `glm46v`) get a one-block vision encoder, the
image processor of their model type with its default arguments (`preprocessor_config.json`),
and GLM-4.1V's `<|image|>` (151343) and `<|video|>` (151344) tokens added to the tokenizer;
`glm4v_moe` and `glm46v` are set to those ids and to GLM-4's video markers too (their configs'
defaults point past the GLM-4 tokenizer's 151,343 ids).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from glm_agent.exceptions import UserError

__all__ = [
    "GLM4_SPECIAL",
    "GLM4_VOCAB_SIZE",
    "VISION_TOKENS",
    "default_tokenizer_path",
    "tiny_config",
    "tiny_glm",
]

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


VISION_TOKENS: dict[str, int] = {"<|image|>": 151343, "<|video|>": 151344}
"""GLM-4.1V's image and video placeholder tokens (transformers' `Glm4vConfig` defaults)."""

_TINY_VISION: dict[str, Any] = {
    "depth": 1,
    "hidden_size": 32,
    "num_heads": 2,
    "intermediate_size": 64,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}
# M-RoPE over half of a 16-wide head: 4 frequencies split (time, height, width).
_TINY_ROPE = {
    "rope_type": "default",
    "rope_theta": 10000.0,
    "mrope_section": [2, 1, 1],
    "partial_rotary_factor": 0.5,
}


def _vision_config(model_type: str, fields: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from transformers import Glm4vConfig, Glm4vMoeConfig, Glm46VConfig

    text = {**fields, "rope_parameters": _TINY_ROPE}
    eos = text.pop("eos_token_id")
    text.pop("pad_token_id")
    if model_type == "glm4v_moe":
        text.update(
            moe_intermediate_size=32,
            n_routed_experts=4,
            num_experts_per_tok=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
        )
    vision = {**_TINY_VISION, "out_hidden_size": text["hidden_size"]}
    ids = {
        "image_token_id": VISION_TOKENS["<|image|>"],
        "video_token_id": VISION_TOKENS["<|video|>"],
        "video_start_token_id": 151341,
        "video_end_token_id": 151342,
    }
    cls: Any = {"glm4v": Glm4vConfig, "glm4v_moe": Glm4vMoeConfig, "glm46v": Glm46VConfig}
    config = cls[model_type](text_config=text, vision_config=vision, **ids, **overrides)
    config.eos_token_id = eos  # read by LocalGLM (stop ids) and the generation config
    config.pad_token_id = GLM4_SPECIAL["pad_token_id"]
    return config


def default_tokenizer_path() -> Path:
    """glm-4-9b-chat's tokenizer.model in the `shared` folder beside the repository."""
    return (
        Path(__file__).resolve().parents[3] / "shared" / "glm" / "glm-4-9b-chat" / "tokenizer.model"
    )


def tiny_config(
    model_type: str = "glm", vocab_size: int = GLM4_VOCAB_SIZE, **overrides: Any
) -> Any:
    """A tiny transformers config of `model_type` (`glm`, `glm4`, `glm4_moe`, or the vision
    `glm4v`, `glm4v_moe`, `glm46v`).

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
    elif model_type in ("glm4v", "glm4v_moe", "glm46v"):
        config = _vision_config(model_type, fields, overrides)
    else:
        raise UserError(
            f"unknown model_type {model_type!r}; valid: glm, glm4, glm4_moe, glm4v, glm4v_moe, "
            "glm46v"
        )
    config.glm_agent_tiny = True  # read back by load_model: warn that the output is noise
    return config


def _image_processor(model_type: str) -> Any:
    """The model type's image processor with its default arguments (Pillow backend: no
    torchvision needed)."""
    if model_type == "glm46v":
        from transformers.models.glm46v.image_processing_pil_glm46v import (
            Glm46VImageProcessorPil,
        )

        return Glm46VImageProcessorPil()
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

    return Glm4vImageProcessorPil()  # glm4v and glm4v_moe (Glm4vProcessor)


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
        model_type: `glm`, `glm4`, `glm4_moe`, or a vision type (`glm4v`, `glm4v_moe`,
            `glm46v`).
        tokenizer_path: GLM-4 `tokenizer.model` (tiktoken ranks); defaults to the shared copy.
        vocab_size: Embedding rows (GLM-4's real 151552 by default).
        seed: Seed of the random weights.
        chat_template: Optional chat template to store with the tokenizer.
        **overrides: Config fields to change.

    Returns:
        The checkpoint directory, ready for `load_model` / `LocalGLM`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, GenerationConfig

    from glm_agent.glm.tokenizer import GLM4_SPECIAL_TOKENS, GLMTokenizer

    tok_file = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
    if not tok_file.is_file():
        raise UserError(
            f"GLM-4 tokenizer not found at {str(tok_file)!r}; pass tokenizer_path= the "
            "tokenizer.model of glm-4-9b-chat (tiktoken BPE ranks)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = tiny_config(model_type, vocab_size, **overrides)
    vision = model_type in ("glm4v", "glm4v_moe", "glm46v")
    torch.manual_seed(seed)
    auto: Any = AutoModelForImageTextToText if vision else AutoModelForCausalLM  # untyped
    model = auto.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    eos = config.eos_token_id
    gen_cls: Any = GenerationConfig
    gen_cls(eos_token_id=eos, pad_token_id=config.pad_token_id).save_pretrained(out)
    special = {**GLM4_SPECIAL_TOKENS, **VISION_TOKENS} if vision else GLM4_SPECIAL_TOKENS
    tok = GLMTokenizer.from_tiktoken_file(tok_file, special_tokens=special)
    tok.save_pretrained(out)
    if vision:
        _image_processor(model_type).save_pretrained(out)
    if chat_template is not None:
        (out / "chat_template.jinja").write_text(chat_template)
    log.warning("tiny_glm wrote %s: random weights, its output is noise", out)
    return out
