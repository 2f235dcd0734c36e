"""Scale check for the knowledge base's vector index: Flat vs HNSW vs IVF-PQ on random vectors.

N random unit vectors of dimension 384 (MiniLM's), 1000 random unit queries. For each index type
offered by `glm_agent.retrieval.FaissIndex`: build time, index size in memory (its serialised
size), batch queries/s, single-query latency p50, and recall@10 against exact search (the Flat
index is the baseline, measured in the same run). These numbers back the thresholds in
`glm_agent/retrieval/faiss_index.py` (`HNSW_MIN_VECTORS`, `IVFPQ_MIN_VECTORS`).

Uniform random vectors have no neighbourhood structure (every point is nearly as far as any
other), so approximate indexes find few of the exact top 10 there; `--data clustered` puts the
vectors around 1000 random centres, closer to real embeddings, to measure recall where it means
something.

    python benchmarks/retrieval_scale.py [--n 1000000] [--kinds flat,hnsw,ivfpq] [--data random]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from glm_agent.retrieval.faiss_index import (
    HNSW_MIN_VECTORS,
    IVFPQ_MIN_VECTORS,
    FaissIndex,
)

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
    ap.add_argument("--out", default=str(Path(__file__).parent / "results/retrieval_scale.json"))
    args = ap.parse_args()

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
    for kind in ["flat", *[x for x in args.kinds.split(",") if x != "flat"]]:
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
    print("| index | build s | memory MB | batch q/s | 1-query p50 ms | recall@10 vs exact |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['kind']} | {r['build_s']} | {r['memory_mb']} | {r['batch_qps']} | "
            f"{r['p50_ms']} | {r['recall_at_10']} |"
        )
    print(f"\nthresholds in use: HNSW from {HNSW_MIN_VECTORS}, IVF-PQ from {IVFPQ_MIN_VECTORS}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
