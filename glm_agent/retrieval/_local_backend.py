"""A knowledge base in a folder: `kb.sqlite` (catalogue), `index.faiss` (vectors), BM25 in memory.

The catalogue is the truth: every write is one SQLite transaction, and the vector index follows
it. The index file is saved atomically (`write_atomic`) at checkpoints; if a crash leaves it
behind the catalogue, opening the folder brings it up to date from the embedding cache, and the
temporary file a killed save left behind is removed.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from glm_agent.retrieval._backend import Scores
from glm_agent.retrieval._store import NewFile, Row, Store, row_of
from glm_agent.retrieval.faiss_index import FaissIndex
from glm_agent.retrieval.lexical import BM25Index

__all__ = ["LocalBackend", "matches", "remove_stale_temporaries"]

# write_atomic's temporary files: `.{name}.{pid}.{thread}.tmp`
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.\d+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of atomic writes whose writing process is gone (killed during
    a save); returns them. A live process's temporary file is left alone."""
    removed = []
    for p in folder.iterdir():
        m = _TMP.match(p.name)
        if m and not (int(m["pid"]) == os.getpid() or _alive(int(m["pid"]))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def matches(row: Row, filters: Mapping[str, Any]) -> bool:
    """Whether a chunk passes `filters` (see `KnowledgeBase.search`)."""
    for key, want in filters.items():
        if key == "source":
            have: Any = row.citation.source
        else:
            have = row.metadata.get(key)
        wants = want if isinstance(want, list | tuple | set | frozenset) else [want]
        if isinstance(have, list | tuple):
            if not set(have) & set(wants):
                return False
        elif have not in wants:
            return False
    return True


class LocalBackend:
    """Chunks in a folder, searched by FAISS and in-memory BM25 (filters evaluated here).

    Args:
        path: The folder.
        dim: Vector dimension.
        index_kind: FAISS index kind ("auto", "flat", "hnsw", "ivfpq").
        device: FAISS device ("auto", "cpu", "gpu").
        embed_rows: Vectors of stored chunks (from the embedding cache), to repair the index.
    """

    name = "faiss"

    def __init__(
        self,
        path: Path,
        *,
        dim: int,
        index_kind: str,
        device: str,
        embed_rows: Callable[[list[Row]], npt.NDArray[np.float32]],
    ) -> None:
        self.path = path
        remove_stale_temporaries(path)
        self._store = Store(path / "kb.sqlite")
        self._lock = threading.RLock()
        index_path = path / "index.faiss"
        if index_path.exists():
            self._index = FaissIndex.load(index_path, device=device)
        else:
            self._index = FaissIndex(dim, kind=index_kind, device=device)
        self._dirty = False
        self._rows: dict[int, Row] = {}
        self._bm25 = BM25Index()
        ids, toks = [], []
        for row, tokens in self._store.rows():
            self._rows[row.id] = row
            ids.append(row.id)
            toks.append(tokens)
        self._bm25.set(ids, toks)
        self._reconcile(embed_rows)

    def _reconcile(self, embed_rows: Callable[[list[Row]], npt.NDArray[np.float32]]) -> None:
        """Bring the vector index in line with the catalogue (after a crash between the two)."""
        have = set(self._index.ids().tolist())
        want = set(self._rows)
        extra, missing = sorted(have - want), sorted(want - have)
        if extra:
            self._index.delete(extra)
        if missing:
            self._index.add(embed_rows([self._rows[i] for i in missing]), missing)
        if extra or missing:
            self._index.save(self.path / "index.faiss")

    def get_meta(self, key: str) -> str | None:
        return self._store.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self._store.set_meta(key, value)

    def file_hashes(self) -> dict[str, str]:
        return self._store.file_hashes()

    def write(
        self, new: Sequence[NewFile], xb: npt.NDArray[np.float32], removed: Sequence[str]
    ) -> tuple[int, int]:
        with self._lock:
            dropped, added = self._store.replace(new, removed)
            self._index.delete(dropped)
            ids = np.array([i for i, _, _ in added], dtype=np.int64)
            if len(ids):
                self._index.add(xb, ids)
            for i in dropped:
                self._rows.pop(i, None)
            for i, f, j in added:
                c = f.chunks[j]
                self._rows[i] = row_of(
                    i, c.source, c.position, c.title, c.page, c.heading_path, c.text, c.metadata
                )
            self._bm25.delete(dropped)
            self._bm25.set([i for i, _, _ in added], [f.tokens[j] for _, f, j in added])
            self._dirty = self._dirty or bool(dropped or added)
        return len(added), len(dropped)

    def checkpoint(self) -> None:
        with self._lock:
            if self._dirty:
                self._index.save(self.path / "index.faiss")
                self._dirty = False

    def _allowed(self, filters: Mapping[str, Any]) -> npt.NDArray[np.int64] | None:
        if not filters:
            return None
        return np.array([i for i, r in self._rows.items() if matches(r, filters)], dtype=np.int64)

    def dense(self, xq: npt.NDArray[np.float32], k: int, filters: Mapping[str, Any]) -> Scores:
        with self._lock:
            allowed = self._allowed(filters)
            if allowed is not None and len(allowed) == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            D, I = self._index.search(xq[None, :], k, allowed=allowed)  # noqa: E741
        keep = I[0] >= 0
        return D[0][keep], I[0][keep]

    def lexical(self, query: str, terms: list[str], k: int, filters: Mapping[str, Any]) -> Scores:
        with self._lock:
            allowed = self._allowed(filters)
            if allowed is not None and len(allowed) == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            return self._bm25.search(query, k, allowed=allowed)

    def rows(self, ids: Sequence[int]) -> dict[int, Row]:
        with self._lock:
            return {int(i): self._rows[int(i)] for i in ids if int(i) in self._rows}

    def chunks(self, filters: Mapping[str, Any], source: str | None = None) -> list[Row]:
        with self._lock:
            return [
                r
                for r in self._rows.values()
                if (source is None or r.citation.source == source) and matches(r, filters)
            ]

    def stats(self) -> dict[str, Any]:
        files, chunks = self._store.counts()
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        with self._lock:
            return {
                "documents": files,
                "chunks": chunks,
                "vectors": self._index.ntotal,
                "index": self._index.current_kind,
                "disk_bytes": size,
            }

    def close(self) -> None:
        self.checkpoint()
        self._store.close()
