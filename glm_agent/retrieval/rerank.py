"""An optional cross-encoder reranker (sentence-transformers CrossEncoder), loaded offline."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from glm_agent.exceptions import MissingDependencyError, UserError

__all__ = ["CrossEncoderReranker", "Reranker"]


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        """One score per passage."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local folder or a cached hub id.

    Args:
        model: e.g. "BAAI/bge-reranker-base" (already downloaded) or a local folder.
        device: Torch device (None: sentence-transformers' choice).
        batch_size: Pairs per forward pass.
    """

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32) -> None:
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from sentence_transformers import CrossEncoder
                except ImportError as e:
                    raise MissingDependencyError(
                        "sentence-transformers", "retrieval", "cross-encoder reranking"
                    ) from e
                try:
                    self._model = CrossEncoder(
                        self.model_name, device=self.device, local_files_only=True
                    )
                except OSError as e:
                    raise UserError(f"cannot load reranker {self.model_name!r} offline: {e}") from e
            return self._model

    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        """One relevance score per passage."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, p) for p in passages]
        s = self._load().predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(s, dtype=np.float32).reshape(-1)
