"""Retrieval quality and speed of the knowledge base on two BEIR-format sets from ../shared.

Sets: cmrc2018-dev (Chinese Wikipedia paragraphs, reading-comprehension questions) and
tau2-banking (a bank's customer-service policies, customer scenarios as queries). For each set the
corpus is ingested into a `KnowledgeBase` (documents chunked; a chunk hit counts for its document)
and every query is run in BM25, dense and hybrid (RRF) modes: nDCG@10, Recall@10, Recall@100,
MRR@10. Baselines measured in the same run: BM25 alone and dense alone (hybrid must match the
better of them). No cross-encoder reranker is available offline here, so no reranked row.

Speed: query latency p50 / p99 of `KnowledgeBase.search(k=10)` with the query vector given (query
embedding excluded, as it is the embedder's cost, reported apart). Ingest: the embedder's
throughput on the chunk texts (through the embedding cache, which it fills), then each backend's
ingest with that cache warm (store chunks/s: chunking, BM25 terms, writing the index), and the
ingest rate they make together (1 / (1/embed + 1/store), what a cold ingest runs at).

Backends (`--backend`, a comma-separated list run in the same process, the first one the
baseline): `faiss` (a local folder: FAISS + in-memory BM25), `milvus` (Milvus Lite, FLAT index:
vectors, our BM25 terms scored by Milvus' BM25 function, filters in Milvus), `milvus-jieba`
(Milvus' own BM25 over its jieba analyzer instead of our terms). All use the same embedder, the
same embedding cache and the same query vectors.

`--tune` runs a small grid (RRF constant and dense weight; convex score fusion and dense weight)
on these dev queries and prints it; the defaults in `KnowledgeBase` are the one setting chosen for
both sets (smallest worst-case gap to the better single retriever). Run with OMP_NUM_THREADS=1.

    python benchmarks/retrieval.py [--embedder minilm] [--sets cmrc2018-dev,tau2-banking] [--tune]
        [--backend faiss,milvus,milvus-jieba]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from glm_agent.retrieval import (
    KnowledgeBase,
    Section,
    chunk_sections,
    convex_fuse,
    resolve_embedder,
    rrf_fuse,
    tokenize,
)
from glm_agent.retrieval._ingest import index_text
from glm_agent.retrieval.embedding_cache import CachedEmbedder

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "retrieval"
DEPTH = 200  # chunks each retriever returns before fusion / collapsing to documents


def load_beir(folder: Path) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, set[str]]]:
    corpus = [
        json.loads(line)
        for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    queries = {
        q["_id"]: q["text"]
        for q in map(
            json.loads, (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        )
    }
    qrels: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(did)
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def backend_options(backend: str, tmp: str) -> dict[str, Any]:
    if backend == "faiss":
        return {}
    terms = "jieba" if backend == "milvus-jieba" else "glm-agent"
    return {
        "backend": "milvus",
        "uri": f"{tmp}/milvus.db",
        "milvus_index": "FLAT",
        "bm25_terms": terms,
    }


def doc_ranking(chunk_ids: np.ndarray, source_of: dict[int, str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in chunk_ids.tolist():
        seen.setdefault(source_of[i], None)
    return list(seen)


def metrics(ranked: list[str], relevant: set[str]) -> dict[str, float]:
    dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(ranked[:10]) if d in relevant)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))
    mrr = next((1 / (r + 1) for r, d in enumerate(ranked[:10]) if d in relevant), 0.0)
    return {
        "ndcg@10": dcg / idcg,
        "recall@10": len(set(ranked[:10]) & relevant) / len(relevant),
        "recall@100": len(set(ranked[:100]) & relevant) / len(relevant),
        "mrr@10": mrr,
    }


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.fmean(r[k] for r in rows), 4) for k in rows[0]}


def prepare(name: str, embedder_spec: str, tmp: str) -> dict[str, Any]:
    """The set, its chunk texts embedded into a shared cache (timed), its queries embedded."""
    corpus, queries, qrels = load_beir(SHARED / name)
    embedder = resolve_embedder(embedder_spec)
    docs = [{"id": d["_id"], "title": d.get("title", ""), "text": d["text"]} for d in corpus]
    texts = [
        index_text(c.title, c.heading_path, c.text)
        for d in docs
        for c in chunk_sections([Section(d["text"])], source=d["id"], title=d["title"])
    ]
    embedder.embed(["warm up"] * 8)
    tokenize("预热分词词典")  # jieba loads its dictionary once per process: not per-chunk cost
    cache = f"{tmp}/{name}-embeddings.sqlite"
    t0 = time.perf_counter()
    CachedEmbedder(embedder, cache).embed(texts)
    raw_s = time.perf_counter() - t0
    qids = list(queries)
    t0 = time.perf_counter()
    xq = embedder.embed([queries[q] for q in qids])
    qembed_ms = (time.perf_counter() - t0) * 1000 / len(qids)
    return {
        "name": name, "embedder": embedder, "docs": docs, "queries": queries, "qrels": qrels,
        "qids": qids, "xq": xq, "cache": cache, "raw_embed_chunks_per_s": len(texts) / raw_s,
        "query_embed_ms": qembed_ms,
    }  # fmt: skip


def run_set(
    data: dict[str, Any], tune: bool, backend: str, tmp: str, **kb_options: Any
) -> dict[str, Any]:
    name, embedder, docs, queries, qrels = (
        data[k] for k in ("name", "embedder", "docs", "queries", "qrels")
    )
    qids, xq = data["qids"], data["xq"]
    folder = f"{tmp}/{name}-{backend}"
    kb = KnowledgeBase(
        folder,
        embedder=embedder,
        per_document=None,
        embedding_cache=data["cache"],
        **backend_options(backend, folder),
        **kb_options,
    )
    t0 = time.perf_counter()
    report = kb.add_documents(docs)
    ingest_s = time.perf_counter() - t0
    assert kb._cached.misses == 0, "the embedding cache should be warm"

    chunk_key: dict[str, int] = {}
    source_of: dict[int, str] = {}
    dense, bm25, hybrid = {}, {}, {}
    for n, q in enumerate(qids):
        for mode, store in (("dense", dense), ("bm25", bm25), ("hybrid", hybrid)):
            hits = kb.search(queries[q], k=DEPTH, mode=mode, query_vector=xq[n], candidates=DEPTH)
            for h in hits:
                i = chunk_key.setdefault(h.citation.chunk_id, len(chunk_key))
                source_of[i] = h.citation.source
            ids = np.array([chunk_key[h.citation.chunk_id] for h in hits], dtype=np.int64)
            store[q] = (np.array([h.score for h in hits], dtype=np.float32), ids)
    lat: dict[str, list[float]] = {"bm25": [], "dense": [], "hybrid": []}
    for n, q in enumerate(qids):
        for mode in lat:
            t0 = time.perf_counter()
            kb.search(queries[q], k=10, mode=mode, query_vector=xq[n])  # type: ignore[arg-type]
            lat[mode].append((time.perf_counter() - t0) * 1000)

    def evaluate(rank_of: dict[str, Any]) -> dict[str, float]:
        return mean([metrics(doc_ranking(rank_of[q][1], source_of), qrels[q]) for q in qids])

    def fused(fusion: str, k: int, w: float) -> dict[str, Any]:
        if fusion == "convex":
            return {q: convex_fuse([dense[q], bm25[q]], weights=[w, 1.0]) for q in qids}
        return {q: rrf_fuse([dense[q][1], bm25[q][1]], k=k, weights=[w, 1.0]) for q in qids}

    result: dict[str, Any] = {
        "set": name,
        "backend": backend,
        "embedder": embedder.name,
        "documents": len(docs),
        "chunks": report.chunks_added,
        "queries": len(qids),
        "bm25": evaluate(bm25),
        "dense": evaluate(dense),
        # what KnowledgeBase.search(mode="hybrid") returns (fusion, language fallback and all)
        "hybrid": evaluate(hybrid),
        "hybrid_settings": {
            "fusion": kb.fusion,
            "rrf_k": kb.rrf_k,
            "dense_weight": kb.dense_weight,
        },
        "latency_ms": {
            m: {
                "p50": round(float(np.percentile(v, 50)), 3),
                "p99": round(float(np.percentile(v, 99)), 3),
            }
            for m, v in lat.items()
        },
        "query_embed_ms": round(data["query_embed_ms"], 2),
        "store_chunks_per_s": round(report.chunks_added / ingest_s, 1),
        "raw_embed_chunks_per_s": round(data["raw_embed_chunks_per_s"], 1),
    }
    if tune:
        grid = [("rrf", k, w) for k in (10, 30, 60) for w in (0.25, 0.5, 1.0)]
        grid += [("convex", 0, w) for w in (0.1, 0.25, 0.5, 1.0)]
        result["tuning"] = [
            {"fusion": f, "rrf_k": k, "dense_weight": w, **evaluate(fused(f, k, w))}
            for f, k, w in grid
        ]
    kb.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--sets", default="cmrc2018-dev,tau2-banking")
    ap.add_argument(
        "--backend", default="faiss", help="faiss, milvus, milvus-jieba (comma-separated)"
    )
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results/retrieval.json"))
    args = ap.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"{SHARED} not found: the benchmark needs ../shared/data/retrieval")
    backends = args.backend.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.sets.split(","):
            data = prepare(s, args.embedder, tmp)
            for b in backends:
                results.append(run_set(data, args.tune, b, tmp))
                print(
                    json.dumps({k: v for k, v in results[-1].items() if k != "tuning"}), flush=True
                )
    print("\n| set | backend | mode | nDCG@10 | R@10 | R@100 | MRR@10 | p50 ms | p99 ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        for mode in ("bm25", "dense", "hybrid"):
            m, lat = r[mode], r["latency_ms"][mode]
            print(
                f"| {r['set']} | {r['backend']} | {mode} | {m['ndcg@10']} | {m['recall@10']} | "
                f"{m['recall@100']} | {m['mrr@10']} | {lat['p50']} | {lat['p99']} |"
            )
    if len(backends) > 1:
        print(f"\nnDCG@10 against the baseline {backends[0]} (same embedder, same run):")
        print("\n| set | backend | mode | nDCG@10 | baseline | difference |")
        print("| --- | --- | --- | ---: | ---: | ---: |")
        for r in results:
            base = next(x for x in results if x["set"] == r["set"] and x["backend"] == backends[0])
            if r is base:
                continue
            for mode in ("bm25", "dense", "hybrid"):
                a, b = r[mode]["ndcg@10"], base[mode]["ndcg@10"]
                print(f"| {r['set']} | {r['backend']} | {mode} | {a} | {b} | {a - b:+.4f} |")
    print(
        "\n| set | backend | embedder | docs | chunks | queries | embedder chunks/s | store chunks/s (cache warm) | ingest chunks/s (cold) | query embed ms |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        cold = 1 / (1 / r["raw_embed_chunks_per_s"] + 1 / r["store_chunks_per_s"])
        r["ingest_chunks_per_s"] = round(cold, 1)
        print(
            f"| {r['set']} | {r['backend']} | {r['embedder']} | {r['documents']} | {r['chunks']} | {r['queries']} | "
            f"{r['raw_embed_chunks_per_s']} | {r['store_chunks_per_s']} | {r['ingest_chunks_per_s']} | {r['query_embed_ms']} |"
        )
    for r in results:
        if "tuning" in r:
            print(
                f"\ntuning on {r['set']} ({r['backend']}, dev queries): fusion, rrf_k, dense_weight -> nDCG@10, R@10, R@100, MRR@10"
            )
            for t in r["tuning"]:
                print(
                    f"  {t['fusion']:<6} k={t['rrf_k']:>3} w={t['dense_weight']:.2f}  "
                    f"{t['ndcg@10']:.4f}  {t['recall@10']:.4f}  {t['recall@100']:.4f}  {t['mrr@10']:.4f}"
                )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
