"""Where a knowledge base keeps its chunks: the interface `KnowledgeBase` drives.

Two implementations: `LocalBackend` (a folder: SQLite catalogue, FAISS vectors, in-memory BM25)
and `MilvusBackend` (a Milvus collection that many processes share).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from glm_agent.retrieval._store import NewFile, Row

Scores = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]


class Backend(Protocol):
    """Storage and candidate search of a knowledge base's chunks."""

    name: str

    def get_meta(self, key: str) -> str | None:
        """A stored setting (the embedder's name)."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        ...

    def file_hashes(self) -> dict[str, str]:
        """Content hash of every stored file (or document id)."""
        ...

    def write(
        self, new: Sequence[NewFile], xb: npt.NDArray[np.float32], removed: Sequence[str]
    ) -> tuple[int, int]:
        """Store `new` files' chunks (vectors `xb`, in order) replacing their earlier versions,
        and drop the chunks of `removed`; returns (chunks added, chunks dropped). A file is
        recorded with its hash only once its chunks are stored."""
        ...

    def checkpoint(self) -> None:
        """Make what was written durable (a local index file is saved)."""
        ...

    def dense(self, xq: npt.NDArray[np.float32], k: int, filters: Mapping[str, Any]) -> Scores:
        """1-D `D`, `I`: the best chunks by inner product with `xq` (`[d]`)."""
        ...

    def lexical(self, query: str, terms: list[str], k: int, filters: Mapping[str, Any]) -> Scores:
        """1-D `D`, `I`: the best chunks by BM25 (scores > 0)."""
        ...

    def rows(self, ids: Sequence[int]) -> dict[int, Row]:
        """The chunks under `ids` (the ones that exist)."""
        ...

    def chunks(self, filters: Mapping[str, Any], source: str | None = None) -> list[Row]:
        """Every chunk matching `filters` (of one document, with `source`), in no order."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counts for `KnowledgeBase.stats`: documents, chunks, vectors, index."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
