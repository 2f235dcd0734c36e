"""An on-disk embedding cache (SQLite) keyed by model name and content hash, around an embedder."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from glm_agent.retrieval.embedders import Embedder

__all__ = ["CachedEmbedder", "embed_in_batches"]


def embed_in_batches(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    progress: bool = False,
    on_batch: Callable[[int, npt.NDArray[np.float32]], None] | None = None,
) -> npt.NDArray[np.float32]:
    """`embedder.embed` over `texts` in batches, with a tqdm progress bar when `progress`.

    Args:
        embedder: The embedder.
        texts: The texts.
        batch_size: Texts per call.
        progress: Show a tqdm bar.
        on_batch: Called after each batch with its start offset and its vectors.
    """
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="embedding", unit="batch")
    for s in starts:
        out[s : s + batch_size] = embedder.embed(texts[s : s + batch_size])
        if on_batch is not None:
            on_batch(s, out[s : s + batch_size])
    return out


class CachedEmbedder:
    """An embedder whose vectors are kept in SQLite by (model name, sha256 of the text).

    Re-ingesting a changed file re-embeds only its new chunks; rebuilding an index after a crash
    or a settings change costs no model time. Vectors are committed batch by batch as they are
    computed, so an ingest killed half way resumes where it stopped.

    Args:
        embedder: The embedder to cache.
        path: The SQLite file (created if missing).
        batch_size: Texts per call to the wrapped embedder.
        progress: Show a progress bar when embedding cache misses.
    """

    def __init__(
        self, embedder: Embedder, path: str | Path, *, batch_size: int = 256, progress: bool = False
    ) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self.languages = getattr(embedder, "languages", None)
        self.batch_size = batch_size
        self.progress = progress
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, hash TEXT, vec BLOB, "
            "PRIMARY KEY (model, hash)) WITHOUT ROWID"
        )

    @staticmethod
    def key(text: str) -> str:
        """The content hash a text is cached under."""
        return hashlib.sha256(text.encode()).hexdigest()

    def embed(
        self, texts: Sequence[str], *, on_progress: Callable[[int, int], None] | None = None
    ) -> npt.NDArray[np.float32]:
        """`[len(texts), dim]` vectors, from the cache where present.

        Args:
            texts: The texts.
            on_progress: Called with (texts embedded or found so far, len(texts)) after the
                cache lookup and after each batch, once that batch is committed to the cache.
        """
        keys = [self.key(t) for t in texts]
        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._lock:
            for s in range(0, len(keys), 500):  # SQLite's host-parameter limit
                part = list(set(keys[s : s + 500]))
                rows = self._db.execute(
                    f"SELECT hash, vec FROM embeddings WHERE model = ? AND hash IN "
                    f"({','.join('?' * len(part))})",
                    [self.name, *part],
                ).fetchall()
                found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        total = len(keys)
        done = total - sum(1 for k in keys if k not in found)
        if on_progress is not None:
            on_progress(done, total)
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            weight = Counter(k for k in keys if k not in found)

            def commit(start: int, x: npt.NDArray[np.float32]) -> None:
                nonlocal done
                part = missing[start : start + len(x)]
                with self._lock:
                    self._db.execute("BEGIN")
                    self._db.executemany(
                        "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                        [(self.name, k, x[i].tobytes()) for i, k in enumerate(part)],
                    )
                    self._db.execute("COMMIT")
                found.update(zip(part, x.copy(), strict=True))
                done += sum(weight[k] for k in part)
                if on_progress is not None:
                    on_progress(done, total)

            embed_in_batches(
                self.inner,
                [by_key[k] for k in missing],
                batch_size=self.batch_size,
                progress=self.progress,
                on_batch=commit,
            )
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._db.close()
