"""A FAISS vector index addressed by int64 ids: add, upsert, delete, filtered search, atomic save.

Functions and methods take and return numpy arrays with FAISS's names: `xb` (vectors to add,
`[n, d]` float32), `xq` (queries, `[nq, d]`), `k`, `D` (scores, `[nq, k]`), `I` (ids, `[nq, k]`,
-1 where there is no result). Scores are inner products; normalised vectors make them cosines.

faiss is imported inside the functions, and the GPU is looked for when an index is built, never at
import time.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from glm_agent.exceptions import MissingDependencyError, UserError

__all__ = [
    "HNSW_MIN_VECTORS",
    "IVFPQ_MIN_VECTORS",
    "FaissIndex",
    "IndexKind",
    "choose_index_kind",
    "write_atomic",
]

IndexKind = Literal["flat", "hnsw", "ivfpq"]
_KINDS: tuple[str, ...] = ("auto", "flat", "hnsw", "ivfpq")

# Thresholds for `kind="auto"`, from benchmarks/retrieval_scale.py (384-d, this 2-core machine
# shared with other jobs; results/retrieval_scale*.json):
# - exact (Flat) search costs ~0.3-0.45 ms per 1000 vectors per query (100k: 29 ms, 1M: 450 ms),
#   so past ~30k vectors it leaves the 10 ms query budget;
# - HNSW (M=32) answers in 0.16 ms at 100k with recall@10 0.993 on clustered vectors, for +18%
#   memory, but builds slowly (100k: 33 s; 1M: 31 min) and costs 1.7 GB at 1M;
# - IVF-PQ (48 bytes a vector: 72 MB at 1M, 2 min to build) has low recall (0.38 at 100k
#   clustered; ~0.02 on uniform random vectors, where HNSW is no better), so it is chosen only
#   where the raw vectors (1.5 GB a million) stop fitting in memory.
HNSW_MIN_VECTORS = 30_000
IVFPQ_MIN_VECTORS = 5_000_000

_MAGIC = b"GLMFAISS1"
_IVFPQ_MIN_TRAIN = 256 * 39  # FAISS warns below 39 training points per centroid (256 per PQ code)
# A filter that leaves fewer ids than this is answered exactly over just those vectors: graph and
# IVF searches with a very selective filter miss results, and a small exact scan is cheap.
_EXACT_FILTER_MAX = 20_000


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:
        raise MissingDependencyError("faiss-cpu", "faiss", "vector search") from e
    return faiss


def choose_index_kind(n: int) -> IndexKind:
    """The index type the knowledge base uses for a corpus of `n` vectors (see the thresholds)."""
    if n >= IVFPQ_MIN_VECTORS:
        return "ivfpq"
    if n >= HNSW_MIN_VECTORS:
        return "hnsw"
    return "flat"


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write `data` (bytes, or pieces of it) to `path`: a crash leaves the old file or the new one.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and the file is
    renamed over `path` (atomic on POSIX and Windows); the folder is fsynced so the rename lasts.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for piece in [data] if isinstance(data, bytes) else data:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _as_xb(x: npt.ArrayLike, d: int) -> npt.NDArray[np.float32]:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != d:
        raise UserError(f"vectors must have shape [n, {d}], got {list(arr.shape)}")
    return arr


def _as_ids(ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


class FaissIndex:
    """Inner-product vectors under int64 ids, over a Flat, HNSW or IVF-PQ FAISS index.

    Args:
        d: Vector dimension.
        kind: "flat" (exact), "hnsw", "ivfpq", or "auto": exact while small, rebuilt as the type
            `choose_index_kind` picks when the corpus grows past a threshold.
        device: "auto" (a GPU when faiss has one at build time), "cpu" or "gpu".
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (higher: better recall, slower).
        nprobe: IVF lists visited per query.

    Methods are thread-safe. HNSW cannot remove vectors, so deletions there are tombstones that
    searches skip; the graph is rebuilt without them once they pass a fifth of the index.
    """

    def __init__(
        self,
        d: int,
        *,
        kind: str = "auto",
        device: str = "auto",
        hnsw_m: int = 32,
        ef_search: int = 64,
        nprobe: int = 16,
    ) -> None:
        if kind not in _KINDS:
            raise UserError(f"unknown index kind {kind!r}; valid kinds: {', '.join(_KINDS)}")
        if device not in ("auto", "cpu", "gpu"):
            raise UserError(f"unknown device {device!r}; valid devices: auto, cpu, gpu")
        self.d = d
        self.kind = kind
        self.device = device
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.nprobe = nprobe
        self._lock = threading.RLock()
        self._dead: set[int] = set()
        self._gpu_index: Any = None
        self._index: Any = self._new_index(self._target_kind(0), None)

    # --- building ---------------------------------------------------------------------------

    @property
    def current_kind(self) -> IndexKind:
        """The type of the FAISS index in use now."""
        return self._kind_now

    def _target_kind(self, n: int) -> IndexKind:
        kind: IndexKind = choose_index_kind(n) if self.kind == "auto" else self.kind  # type: ignore[assignment]
        if kind == "ivfpq" and n < _IVFPQ_MIN_TRAIN:
            return "flat"  # too few vectors to train the quantisers yet: exact until there are
        return kind

    def _new_index(self, kind: IndexKind, train: npt.NDArray[np.float32] | None) -> Any:
        faiss = _faiss()
        if kind == "flat":
            inner = faiss.IndexFlatIP(self.d)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 40
            inner.hnsw.efSearch = self.ef_search
        else:
            n = 0 if train is None else len(train)
            # 2*sqrt(n) lists, trained on ~50 points each: a short k-means on 2 cores (see the
            # scale benchmark), with recall bought back through nprobe
            nlist = max(1, min(4096, int(2 * np.sqrt(max(n, 1))), n // 39))
            m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if self.d % m == 0)
            quantizer = faiss.IndexFlatIP(self.d)
            inner = faiss.IndexIVFPQ(quantizer, self.d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            if train is None or len(train) < _IVFPQ_MIN_TRAIN:
                raise UserError(
                    f"IVF-PQ needs at least {_IVFPQ_MIN_TRAIN} vectors to train; use kind="
                    "'flat' or 'hnsw' (or 'auto') for smaller corpora"
                )
            inner.train(train[np.random.default_rng(0).permutation(len(train))[: 50 * nlist]])
            inner.nprobe = self.nprobe
            inner.set_direct_map_type(faiss.DirectMap.Array)  # for reconstruct(id)
        self._kind_now: IndexKind = kind
        return faiss.IndexIDMap2(inner)

    def _all(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        faiss = _faiss()
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if len(ids) == 0:
            return ids, np.zeros((0, self.d), dtype=np.float32)
        inner = faiss.downcast_index(self._index.index)
        xb = np.asarray(inner.reconstruct_n(0, len(ids)), dtype=np.float32)
        keep = np.array([int(i) not in self._dead for i in ids], dtype=bool)
        return ids[keep], xb[keep]

    def _rebuild(self, kind: IndexKind, ids: npt.NDArray[np.int64], xb: Any) -> None:
        index = self._new_index(kind, xb if kind == "ivfpq" else None)
        if len(ids):
            index.add_with_ids(xb, ids)
        self._index, self._dead, self._gpu_index = index, set(), None

    # --- mutation ---------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Live vectors in the index."""
        with self._lock:
            return int(self._index.ntotal) - len(self._dead)

    def ids(self) -> npt.NDArray[np.int64]:
        """The ids of the live vectors."""
        with self._lock:
            ids = _faiss().vector_to_array(self._index.id_map).astype(np.int64)
            live: npt.NDArray[np.int64] = ids[
                ~np.isin(ids, np.fromiter(self._dead, np.int64, len(self._dead)))
            ]
            return live

    def add(self, xb: npt.ArrayLike, ids: npt.ArrayLike) -> None:
        """Add vectors `xb` under `ids` (ids must be new; use `upsert` to replace)."""
        x, i = _as_xb(xb, self.d), _as_ids(ids)
        if len(x) != len(i):
            raise UserError(f"{len(x)} vectors but {len(i)} ids")
        with self._lock:
            if self._dead & set(i.tolist()):
                old_ids, old_xb = self._all()
                self._rebuild(self._kind_now, old_ids, old_xb)
            target = self._target_kind(self.ntotal + len(i))
            if target != self._kind_now:
                old_ids, old_xb = self._all()
                self._rebuild(target, np.concatenate([old_ids, i]), np.vstack([old_xb, x]))
                return
            self._index.add_with_ids(x, i)
            self._gpu_index = None

    def delete(self, ids: npt.ArrayLike) -> int:
        """Remove the vectors under `ids`; returns how many were there."""
        i = _as_ids(ids)
        with self._lock:
            present = set(self.ids().tolist()) & set(i.tolist())
            if not present:
                return 0
            if self._kind_now != "flat":
                # HNSW cannot remove, and IndexIDMap2 over IVF would lose track of positions
                self._dead |= present
                if len(self._dead) * 5 > self._index.ntotal:
                    old_ids, old_xb = self._all()
                    self._rebuild(self._kind_now, old_ids, old_xb)
            else:
                self._index.remove_ids(_faiss().IDSelectorBatch(np.array(sorted(present))))
            self._gpu_index = None
            return len(present)

    def upsert(self, xb: npt.ArrayLike, ids: npt.ArrayLike) -> None:
        """Add vectors under `ids`, replacing any already stored under them."""
        with self._lock:
            self.delete(ids)
            self.add(xb, ids)

    # --- search -----------------------------------------------------------------------------

    def search(
        self, xq: npt.ArrayLike, k: int, *, allowed: npt.ArrayLike | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The `k` best ids for each query: `D` (scores) and `I` (ids, -1 past the results).

        Args:
            xq: Queries, `[nq, d]`.
            k: Results per query.
            allowed: If given, only these ids may be returned (metadata filters).
        """
        faiss = _faiss()
        q = _as_xb(xq, self.d)
        with self._lock:
            sel = None
            if allowed is not None:
                a = _as_ids(allowed)
                if self._dead:
                    a = a[~np.isin(a, np.fromiter(self._dead, np.int64, len(self._dead)))]
                if len(a) <= _EXACT_FILTER_MAX:
                    return self._search_subset(q, k, a)
                sel = faiss.IDSelectorBatch(a)
            elif self._dead:
                sel = faiss.IDSelectorNot(
                    faiss.IDSelectorBatch(np.fromiter(self._dead, np.int64, len(self._dead)))
                )
            if self._index.ntotal == 0 or k <= 0:
                return (
                    np.full((len(q), max(k, 0)), -np.inf, dtype=np.float32),
                    np.full((len(q), max(k, 0)), -1, dtype=np.int64),
                )
            if sel is None:
                index = self._gpu() or self._index
                D, I = index.search(q, k)  # noqa: E741
            else:
                params = self._params(sel)
                D, I = self._index.search(q, k, params=params)  # noqa: E741
            return D, I.astype(np.int64)

    def _search_subset(
        self, q: npt.NDArray[np.float32], k: int, a: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Exact search over the vectors under ids `a` (the ones present)."""
        present = _faiss().vector_to_array(self._index.id_map).astype(np.int64)
        a = np.unique(a[np.isin(a, present)])
        D = np.full((len(q), k), -np.inf, dtype=np.float32)
        I = np.full((len(q), k), -1, dtype=np.int64)  # noqa: E741
        if len(a) == 0:
            return D, I
        xb = np.vstack([self._index.reconstruct(int(i)) for i in a]).astype(np.float32)
        scores = q @ xb.T  # [nq, len(a)]
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        n = top.shape[1]
        D[:, :n] = np.take_along_axis(scores, top, axis=1)
        I[:, :n] = a[top]
        return D, I

    def _params(self, sel: Any) -> Any:
        faiss = _faiss()
        if self._kind_now == "hnsw":
            return faiss.SearchParametersHNSW(sel=sel, efSearch=self.ef_search)
        if self._kind_now == "ivfpq":
            return faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe)
        return faiss.SearchParameters(sel=sel)

    def _gpu(self) -> Any:
        """A GPU copy of the index when one is wanted and present (HNSW stays on the CPU)."""
        if self.device == "cpu" or self._kind_now == "hnsw":
            return None
        if self._gpu_index is None:
            faiss = _faiss()
            ngpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
            if ngpu == 0:
                if self.device == "gpu":
                    raise UserError("device='gpu' but faiss sees no GPU; install faiss-gpu")
                return None
            res = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(res, 0, self._index)
        return self._gpu_index

    # --- persistence ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The index as bytes (header with settings and tombstones, then FAISS's own format)."""
        with self._lock:
            header = json.dumps(
                {
                    "d": self.d,
                    "kind": self.kind,
                    "kind_now": self._kind_now,
                    "dead": sorted(self._dead),
                    "hnsw_m": self.hnsw_m,
                    "ef_search": self.ef_search,
                    "nprobe": self.nprobe,
                }
            ).encode()
            body: bytes = _faiss().serialize_index(self._index).tobytes()
        return _MAGIC + struct.pack("<Q", len(header)) + header + body

    @classmethod
    def from_bytes(cls, data: bytes, *, device: str = "auto") -> FaissIndex:
        """An index from `to_bytes` output."""
        if not data.startswith(_MAGIC):
            raise UserError("not a glm-agent FAISS index file (bad header)")
        start = len(_MAGIC) + 8
        (n,) = struct.unpack("<Q", data[len(_MAGIC) : start])
        h = json.loads(data[start : start + n])
        self = cls(
            h["d"],
            kind=h["kind"],
            device=device,
            hnsw_m=h["hnsw_m"],
            ef_search=h["ef_search"],
            nprobe=h["nprobe"],
        )
        faiss = _faiss()
        self._index = faiss.deserialize_index(np.frombuffer(data[start + n :], dtype=np.uint8))
        self._kind_now = h["kind_now"]
        self._dead = set(h["dead"])
        inner = faiss.downcast_index(self._index.index)
        if self._kind_now == "hnsw":
            inner.hnsw.efSearch = self.ef_search
        elif self._kind_now == "ivfpq":
            inner.nprobe = self.nprobe
        return self

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save atomically: a crash mid-save leaves the previous file readable."""
        write_atomic(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "auto") -> FaissIndex:
        """Load an index written by `save`."""
        return cls.from_bytes(Path(path).read_bytes(), device=device)
