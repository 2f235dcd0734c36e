"""Loading GLM checkpoints through transformers' own model classes.

Supported `model_type`s: `glm` (glm-4-9b-chat-hf, glm-4-9b-chat-1m converted), `glm4`
(GLM-4-9B/32B-0414, GLM-Z1) and `glm4_moe` (GLM-4.5 / 4.6 / 4.7), loaded as causal LMs; and the
vision checkpoints `glm4v` (GLM-4.1V-Thinking), `glm4v_moe` (GLM-4.5V, GLM-4.6V) and `glm46v`
(GLM-4.6V, GLM-4.6V-Flash in transformers 5), loaded as image-text-to-text models. bf16 on GPU,
fp32 on CPU; device, dtype and attention implementation are chosen automatically and can be
overridden.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm_agent.exceptions import ConfigError, MissingDependencyError, UserError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTENTION_BACKENDS",
    "SUPPORTED_MODEL_TYPES",
    "VISION_MODEL_TYPES",
    "LoadedModel",
    "load_model",
    "read_model_config",
    "resolve_attention",
    "resolve_device",
    "resolve_dtype",
]

log = logging.getLogger("glm_agent.runtime")

SUPPORTED_MODEL_TYPES: dict[str, str] = {
    "glm": "glm-4-9b-chat-hf, glm-4-9b-chat-1m (converted)",
    "glm4": "GLM-4-9B/32B-0414, GLM-Z1",
    "glm4_moe": "GLM-4.5 / 4.6 / 4.7",
    "glm4v": "GLM-4.1V-9B-Thinking",
    "glm4v_moe": "GLM-4.5V, GLM-4.6V",
    "glm46v": "GLM-4.6V, GLM-4.6V-Flash",
}
"""model_type -> the checkpoints it covers."""

VISION_MODEL_TYPES = frozenset({"glm4v", "glm4v_moe", "glm46v"})
"""The model types loaded with their vision encoder (images in, text out)."""

ATTENTION_BACKENDS = ("xformers", "sdpa", "eager")
"""Attention implementations `load_model` accepts."""

_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A model ready for the engine.

    Attributes:
        model: The transformers causal LM, in eval mode on `device`.
        path: Where it was loaded from (directory or hub id).
        model_type: The config's `model_type`.
        device: The device it lives on.
        dtype: Its parameter dtype.
        attention_backend: `xformers`, `sdpa` or `eager`.
        is_tiny: True for a `tiny_glm` checkpoint (random weights: its output is noise).
    """

    model: Any
    path: str
    model_type: str
    device: torch.device
    dtype: torch.dtype
    attention_backend: str
    is_tiny: bool = False

    @property
    def config(self) -> Any:
        """The model's transformers config."""
        return self.model.config

    @property
    def vision(self) -> bool:
        """True for a vision checkpoint (`VISION_MODEL_TYPES`)."""
        return self.model_type in VISION_MODEL_TYPES


def resolve_device(device: str | None = None) -> torch.device:
    """`device` as a torch device; None picks CUDA when present, else CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return dev


def resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    """`dtype` as a torch dtype; None picks bfloat16 on GPU and float32 on CPU."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).removeprefix("torch.").lower())
    if name is None:
        raise UserError(f"unknown dtype {dtype!r}; valid: {', '.join(sorted(_DTYPES))}")
    result: torch.dtype = getattr(torch, name)
    return result


def resolve_attention(attention: str | None, device: torch.device) -> str:
    """The attention backend: xformers on GPU when installed, else SDPA; explicit names checked."""
    from glm_agent.runtime.xformers_attention import register_xformers, xformers_available

    if attention is None:
        attention = "xformers" if device.type == "cuda" and xformers_available() else "sdpa"
    if attention not in ATTENTION_BACKENDS:
        raise UserError(
            f"unknown attention backend {attention!r}; valid: {', '.join(ATTENTION_BACKENDS)}"
        )
    if attention == "xformers":
        if not xformers_available():
            raise MissingDependencyError(
                "xformers (with a CUDA device)", "gpu", "xformers attention"
            )
        register_xformers()
    return attention


def _is_local(path_or_id: str) -> bool:
    return Path(path_or_id).expanduser().exists() or not _HUB_ID.match(path_or_id)


def read_model_config(path_or_id: str) -> Any:
    """The checkpoint's transformers config, after checking it is a supported GLM.

    Raises:
        UserError: No checkpoint at a local path, or no config.json in it.
        ConfigError: An unsupported `model_type` (the valid ones are listed).
    """
    from transformers import AutoConfig

    if _is_local(path_or_id):
        root = Path(path_or_id).expanduser()
        if not root.is_dir():
            raise UserError(f"no checkpoint directory at {str(root)!r} (nor a hub id 'org/name')")
        cfg_file = root / "config.json"
        if not cfg_file.is_file():
            raise UserError(f"{str(root)!r} has no config.json; is it a transformers checkpoint?")
        model_type = json.loads(cfg_file.read_text()).get("model_type")
        _check_model_type(model_type, str(cfg_file))
    config = AutoConfig.from_pretrained(path_or_id)
    _check_model_type(config.model_type, path_or_id)
    return config


def _check_model_type(model_type: Any, where: str) -> None:
    if model_type in SUPPORTED_MODEL_TYPES:
        return
    valid = "; ".join(f"{k} ({v})" for k, v in SUPPORTED_MODEL_TYPES.items())
    hint = ""
    if model_type == "chatglm":
        hint = " (remote-code glm-4-9b-chat: use the converted glm-4-9b-chat-hf)"
    raise ConfigError(
        f"unsupported model_type {model_type!r}{hint}; supported: {valid}",
        path=where,
        key="model_type",
    )


def load_model(
    path_or_id: str | Path,
    *,
    device: str | None = None,
    dtype: Any = None,
    attention: str | None = None,
) -> LoadedModel:
    """Load a GLM causal LM from a local directory or a hub id.

    Args:
        path_or_id: Checkpoint directory or hub id (`zai-org/glm-4-9b-chat-hf`).
        device: `cuda`, `cuda:1`, `cpu`...; None: CUDA when present.
        dtype: `bfloat16`, `float32`...; None: bf16 on GPU, fp32 on CPU.
        attention: `xformers`, `sdpa` or `eager`; None: xformers on GPU if installed, else SDPA.
    """
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    except ImportError as e:
        raise MissingDependencyError("torch and transformers", "local", "local GLM models") from e

    path = str(path_or_id)
    config = read_model_config(path)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    backend = resolve_attention(attention, dev)
    if config.model_type in VISION_MODEL_TYPES and backend == "xformers":
        if attention == "xformers":
            raise UserError(
                "xformers attention serves the text checkpoints' static cache; vision "
                f"checkpoints ({config.model_type}) run on sdpa or eager"
            )
        backend = "sdpa"
    auto: Any = (
        AutoModelForImageTextToText
        if config.model_type in VISION_MODEL_TYPES
        else AutoModelForCausalLM
    )
    try:
        model: Any = auto.from_pretrained(path, dtype=dt, attn_implementation=backend)
    except OSError as e:
        raise UserError(f"cannot load weights from {path!r}: {e}") from e
    model.to(dev).eval()
    is_tiny = bool(getattr(config, "glm_agent_tiny", False))
    if is_tiny:
        log.warning("%s is a tiny_glm checkpoint with random weights: its output is noise", path)
    log.info(
        "loaded %s (model_type=%s) on %s in %s, attention: %s",
        path,
        config.model_type,
        dev,
        dt,
        backend,
    )
    return LoadedModel(model, path, config.model_type, dev, dt, backend, is_tiny)
