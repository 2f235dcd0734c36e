"""Typed settings shared by every model backend."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ModelSettings", "ToolChoice"]

ToolChoice = Literal["auto", "none", "required"] | str
"""`auto`, `none`, `required`, or the name of the one tool the model must call."""


class ModelSettings(BaseModel):
    """Per-request generation settings. `None` means the backend's default."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0.0)
    """Sampling temperature; 0 means greedy."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    top_k: int | None = Field(default=None, ge=0)
    """Sample among the k most likely tokens (0: off)."""
    repetition_penalty: float | None = Field(default=None, gt=0.0)
    """Penalty over 1 discourages repeating tokens already in the context."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most tokens to generate in one turn."""
    stop: list[str] | None = None
    """Stop strings (besides the model's own stop tokens)."""
    seed: int | None = None
    """Random seed for sampling."""
    tool_choice: ToolChoice | None = None
    """Whether and which tool the model must call."""
    parallel_tool_calls: bool | None = None
    """Whether the model may make several calls in one turn."""
    enable_thinking: bool | None = None
    """GLM-4.5+ thinking mode (None: the model's default)."""
    timeout: float | None = Field(default=None, gt=0.0)
    """Seconds one request may take."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Backend-specific fields passed through as they are."""

    def merged(self, other: ModelSettings | None) -> ModelSettings:
        """These settings overridden by the fields `other` sets explicitly."""
        if other is None:
            return self
        data = self.model_dump(exclude_unset=True)
        data.update(other.model_dump(exclude_unset=True))
        return ModelSettings(**data)
