"""Choosing the next token from last-position logits: greedy, temperature, top-k, top-p,
repetition penalty, seeded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["SamplingParams", "sample_next"]


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens and when to stop.

    Attributes:
        max_new_tokens: Most tokens to generate.
        temperature: 0 (or None) means greedy.
        top_k: Keep the k most likely tokens (0: off).
        top_p: Keep the smallest set of tokens whose probability reaches p (1.0: off).
        repetition_penalty: Over 1 discourages tokens already in the sequence (1.0: off).
        seed: Seed of the sampling generator (None: nondeterministic).
        stop_token_ids: Token ids that end a sequence (GLM: 151329, 151336, 151338).
        stop: Stop strings; the text is cut before them.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_token_ids: tuple[int, ...] = ()
    stop: tuple[str, ...] = field(default_factory=tuple)

    @property
    def greedy(self) -> bool:
        """True when no randomness is involved."""
        return not self.temperature or self.temperature <= 0.0


def _apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float
) -> torch.Tensor:
    import torch

    # transformers' RepetitionPenaltyLogitsProcessor rule: divide positives, multiply negatives.
    picked = torch.gather(logits, 1, seen)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return logits.scatter(1, seen, picked)


def sample_next(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pick one token per row.

    Args:
        logits: `[B, V]` last-position logits (float32).
        params: Sampling parameters.
        generator: Random generator (seeded by the caller) for reproducible sampling.
        seen: `[B, N]` token ids already in each sequence, for the repetition penalty.

    Returns:
        `[B]` token ids.
    """
    import torch

    logits = logits.float()
    if params.repetition_penalty != 1.0 and seen is not None and seen.numel():
        logits = _apply_repetition_penalty(logits, seen, params.repetition_penalty)
    if params.greedy:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature
    if params.top_k and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the mass before it already reaches top_p (the top one always stays).
        drop_sorted = (cum - sorted_logits.softmax(dim=-1)) >= params.top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
