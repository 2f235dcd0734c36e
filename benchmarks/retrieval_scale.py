"""Scale check for the knowledge base's vector index: FAISS (Flat, HNSW, IVF-PQ) and Milvus.

N random unit vectors of dimension 384 (MiniLM's), 1000 random unit queries. For each index type
offered by `glm_agent.retrieval.FaissIndex`: build time, index size in memory (its serialised
size), batch queries/s, single-query latency p50, and recall@10 against exact search (the Flat
index is the baseline, measured in the same run). These numbers back the thresholds in
`glm_agent/retrieval/faiss_index.py` (`HNSW_MIN_VECTORS`, `IVFPQ_MIN_VECTORS`).

`--backend milvus` measures `MilvusIndex` (the same interface, Milvus Lite in this process: a
local folder; `--uri http://host:19530` for a server) with Milvus' FLAT, HNSW and IVF_FLAT
indexes (`--kinds FLAT,IVF_FLAT`); build time there is insert + flush + index build, size is the
folder's bytes on disk, and recall is against the exact FAISS Flat search of the same run (the
baseline, always measured first).

Uniform random vectors have no neighbourhood structure (every point is nearly as far as any
other), so approximate indexes find few of the exact top 10 there; `--data clustered` puts the
vectors around 1000 random centres, closer to real embeddings, to measure recall where it means
something.

    python benchmarks/retrieval_scale.py [--n 1000000] [--kinds flat,hnsw,ivfpq] [--data random]
    python benchmarks/retrieval_scale.py --backend milvus --kinds FLAT,IVF_FLAT --data clustered
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from glm_agent.retrieval.faiss_index import (
    HNSW_MIN_VECTORS,
    IVFPQ_MIN_VECTORS,
    FaissIndex,
)
from glm_agent.retrieval.milvus_index import MilvusIndex

D_DIM = 384


def unit(rng: np.random.Generator, n: int, centers: np.ndarray | None = None) -> np.ndarray:
    x = rng.standard_normal((n, D_DIM), dtype=np.float32)
    if centers is not None:  # points scattered around topic centres, as real embeddings are
        x = centers[rng.integers(0, len(centers), n)] + 0.04 * x
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--kinds", default="flat,hnsw,ivfpq")
    ap.add_argument(
        "--data",
        choices=["random", "clustered"],
        default="random",
        help="uniform random unit vectors, or vectors around 1000 random centres",
    )
    ap.add_argument("--backend", choices=["faiss", "milvus"], default="faiss")
    ap.add_argument(
        "--uri", default=None, help="Milvus server URI (default: Milvus Lite in a temp folder)"
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    args.out = args.out or str(
        Path(__file__).parent / f"results/retrieval_scale_{args.backend}.json"
    )

    rng = np.random.default_rng(0)
    centers = None
    if args.data == "clustered":
        centers = rng.standard_normal((1000, D_DIM), dtype=np.float32) / np.sqrt(D_DIM)
    xb = unit(rng, args.n, centers)
    xq = unit(rng, args.nq, centers)
    ids = np.arange(args.n, dtype=np.int64)
    k = 10
    rows: list[dict[str, object]] = []
    gt: np.ndarray | None = None
    kinds = [x for x in args.kinds.split(",") if x != "flat"]
    for kind in (
        ["flat", *kinds] if args.backend == "faiss" else ["flat", *[("milvus", k) for k in kinds]]
    ):
        if isinstance(kind, tuple):
            row = milvus_row(kind[1], args, xb, xq, ids, gt, k)
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        t0 = time.perf_counter()
        index = FaissIndex(D_DIM, kind=kind, device="cpu")
        step = 100_000  # add in slices so HNSW's progress can be followed
        for s in range(0, args.n, step):
            index.add(xb[s : s + step], ids[s : s + step]) if kind != "ivfpq" else None
        if kind == "ivfpq":
            index.add(xb, ids)  # trained on the whole set at once
        build_s = time.perf_counter() - t0
        mem_mb = len(index.to_bytes()) / 2**20
        t0 = time.perf_counter()
        _, I = index.search(xq, k)  # noqa: E741
        batch_qps = args.nq / (time.perf_counter() - t0)
        lat = []
        for q in xq[:100]:
            t0 = time.perf_counter()
            index.search(q[None, :], k)
            lat.append((time.perf_counter() - t0) * 1000)
        if kind == "flat":
            gt = I
        assert gt is not None
        recall = float(np.mean([len(set(I[i]) & set(gt[i])) / k for i in range(args.nq)]))
        row = {
            "backend": "faiss",
            "kind": kind,
            "n": args.n,
            "data": args.data,
            "build_s": round(build_s, 1),
            "memory_mb": round(mem_mb, 1),
            "batch_qps": round(batch_qps, 1),
            "p50_ms": round(statistics.median(lat), 3),
            "recall_at_10": round(recall, 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        del index

    print(
        f"\n{args.n} {args.data} {D_DIM}-d unit vectors, {args.nq} queries, k={k}; baseline: flat\n"
    )
    print(
        "| backend | index | build s | memory MB | batch q/s | 1-query p50 ms | recall@10 vs exact |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['backend']} | {r['kind']} | {r['build_s']} | {r['memory_mb']} | {r['batch_qps']} | "
            f"{r['p50_ms']} | {r['recall_at_10']} |"
        )
    print(f"\nthresholds in use: HNSW from {HNSW_MIN_VECTORS}, IVF-PQ from {IVFPQ_MIN_VECTORS}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows}, indent=2) + "\n")


def milvus_row(
    kind: str, args: Any, xb: np.ndarray, xq: np.ndarray, ids: np.ndarray, gt: Any, k: int
) -> dict[str, Any]:
    """Insert, flush and index the vectors in a Milvus collection; time it and its searches."""
    folder = Path(tempfile.mkdtemp(prefix="milvus-scale-"))
    uri = args.uri or str(folder / "scale.db")
    collection = f"scale_{kind.lower()}"
    t0 = time.perf_counter()
    index = MilvusIndex(uri, D_DIM, collection=collection, index_type=kind)
    for s in range(0, args.n, 10_000):
        index.add(xb[s : s + 10_000], ids[s : s + 10_000])
    index.client.flush(collection)
    index.search(xq[:1], k)  # the first search waits for the index
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    I = np.vstack([index.search(xq[s : s + 100], k)[1] for s in range(0, args.nq, 100)])  # noqa: E741
    batch_qps = args.nq / (time.perf_counter() - t0)
    lat = []
    for q in xq[:100]:
        t0 = time.perf_counter()
        index.search(q[None, :], k)
        lat.append((time.perf_counter() - t0) * 1000)
    recall = float(np.mean([len(set(I[i]) & set(gt[i])) / k for i in range(args.nq)]))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
    index.drop()
    index.client.close()
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "backend": "milvus" if args.uri else "milvus-lite",
        "kind": kind,
        "n": args.n,
        "data": args.data,
        "build_s": round(build_s, 1),
        "memory_mb": round(size, 1) if not args.uri else None,
        "batch_qps": round(batch_qps, 1),
        "p50_ms": round(statistics.median(lat), 3),
        "recall_at_10": round(recall, 3),
    }


if __name__ == "__main__":
    main()
