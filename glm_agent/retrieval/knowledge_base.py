"""`KnowledgeBase`: a folder that ingests documents incrementally and answers hybrid searches.

```python
kb = KnowledgeBase("kb/")                    # the bundled MiniLM embedder; "test" in tests
report = kb.ingest("docs/", exclude=["drafts/*"])
hits = kb.search("how do I get a refund?", k=5, filters={"tenant": "acme"})
prompt_context = format_context(hits)
```

With the default backend ("faiss") the folder holds `kb.sqlite` (files, chunks, settings),
`index.faiss` (vectors, saved atomically) and `embeddings.sqlite` (the embedding cache); if a crash
leaves the index behind the catalogue, opening the folder brings the index up to date from the
cache. With `backend="milvus"` the chunks, vectors, BM25 terms and catalogue live in Milvus (a
server by URI, or Milvus Lite), shared by every process that opens it, and the folder keeps only
this process's embedding cache:

```python
kb = KnowledgeBase(".cache/kb", backend="milvus", uri="http://milvus:19530", collection="support")
```
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import numpy as np
import numpy.typing as npt

import glm_agent.tracing as tracing
from glm_agent.exceptions import UserError
from glm_agent.retrieval._backend import Backend
from glm_agent.retrieval._ingest import Batcher, ProgressCallback, index_text, ingest_path
from glm_agent.retrieval._store import Row
from glm_agent.retrieval.chunking import TokenCounter
from glm_agent.retrieval.context import format_context
from glm_agent.retrieval.embedders import Embedder, covers, resolve_embedder
from glm_agent.retrieval.embedding_cache import CachedEmbedder
from glm_agent.retrieval.lexical import convex_fuse, rrf_fuse, tokenize
from glm_agent.retrieval.records import Hit, IngestReport, Section
from glm_agent.retrieval.rerank import Reranker

__all__ = ["KnowledgeBase", "SearchMode"]

SearchMode = Literal["hybrid", "dense", "bm25"]
_MODES = ("hybrid", "dense", "bm25")
_BACKENDS = ("faiss", "milvus")


class KnowledgeBase:
    """Documents searchable by meaning (vectors) and by words (BM25), with citations.

    Args:
        path: The knowledge base's folder (created if missing); with backend="milvus", only the
            embedding cache of this process is kept there.
        embedder: An Embedder or a name for `resolve_embedder` (None: the one the knowledge base
            was built with, else the bundled MiniLM).
        chunk_size: Most tokens per chunk.
        overlap: Tokens repeated between consecutive chunks.
        count_tokens: Token counter for chunking (default: a fast estimate).
        index_kind: FAISS: "auto" (by corpus size), "flat", "hnsw" or "ivfpq".
        device: FAISS: "auto" (GPU when faiss has one), "cpu" or "gpu".
        reranker: A cross-encoder to reorder the top results, if any.
        fusion: How hybrid search merges the two rankings: "convex" (a weighted sum of min-max
            scaled scores) or "rrf" (reciprocal ranks).
        rrf_k: The reciprocal-rank-fusion constant (fusion="rrf").
        dense_weight: Weight of the dense scores in hybrid fusion (BM25's is 1). The defaults
            (convex, 0.1) were chosen on the dev queries of benchmarks/retrieval.py with the
            default English MiniLM embedder, as the grid point whose worse gap to the better
            single retriever over both sets was smallest; with a strong multilingual embedder
            (bge-m3) raise it.
        progress: Show a tqdm bar while embedding.
        backend: "faiss" (this folder) or "milvus" (a Milvus collection many processes share).
        uri: Milvus: `http(s)://host:port` of a server or cluster, or a `.db` path (Milvus Lite,
            one process).
        collection: Milvus: the collection's name.
        token: Milvus: credentials (`user:password` or an API key).
        milvus_index: Milvus: the vector index (AUTOINDEX, FLAT, HNSW, IVF_FLAT).
        bm25_terms: Milvus: "glm-agent" (our BM25 terms, scored by Milvus) or "jieba" (Milvus'
            own analyzer; measured worse, see docs/knowledge.md).
        per_document: Default for `search`: at most this many passages per document (1: the top
            ten are ten sources); None for no limit.
        commit_chunks: Ingest writes to the index every this many chunks...
        commit_seconds: ...or this often, whichever comes first.
        embed_batch_size: Texts per embedder call; each batch is committed to the embedding
            cache as soon as it is computed.
        embedding_cache: The embedding cache's SQLite file (default `path/embeddings.sqlite`);
            knowledge bases with the same embedder may share one.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        embedder: Embedder | str | None = None,
        chunk_size: int = 256,
        overlap: int = 32,
        count_tokens: TokenCounter | None = None,
        index_kind: str = "auto",
        device: str = "auto",
        reranker: Reranker | None = None,
        fusion: str = "convex",
        rrf_k: int = 60,
        dense_weight: float = 0.1,
        progress: bool = False,
        backend: str = "faiss",
        uri: str | None = None,
        collection: str = "glm_agent",
        token: str | None = None,
        milvus_index: str = "AUTOINDEX",
        bm25_terms: Literal["glm-agent", "jieba"] = "glm-agent",
        per_document: int | None = 1,
        commit_chunks: int = 2048,
        commit_seconds: float = 30.0,
        embed_batch_size: int = 256,
        embedding_cache: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.chunk_size, self.overlap, self.count_tokens = chunk_size, overlap, count_tokens
        if fusion not in ("rrf", "convex"):
            raise UserError(f"unknown fusion {fusion!r}; valid: rrf, convex")
        if backend not in _BACKENDS:
            raise UserError(f"unknown backend {backend!r}; valid: {', '.join(_BACKENDS)}")
        if backend == "milvus" and not uri:
            raise UserError("backend='milvus' needs uri= (http://host:19530, or a .db path)")
        if per_document is not None and per_document < 1:
            raise UserError(f"per_document must be None or at least 1, got {per_document}")
        self.reranker, self.rrf_k, self.dense_weight = reranker, rrf_k, dense_weight
        self.fusion, self.per_document = fusion, per_document
        self.commit_chunks, self.commit_seconds = commit_chunks, commit_seconds
        self._lock = threading.RLock()
        self._ingest_lock = threading.Lock()
        cache_file = Path(embedding_cache or self.path / "embeddings.sqlite")
        self._backend: Backend
        if backend == "milvus":
            assert uri is not None
            from glm_agent.retrieval._milvus_backend import MilvusBackend

            milvus = MilvusBackend(
                uri, collection=collection, token=token, index_type=milvus_index, terms=bm25_terms
            )
            built_with = milvus.get_meta("embedder")
            self.embedder = resolve_embedder(embedder if embedder is not None else built_with)
            self._check_embedder(built_with, f"Milvus collection {collection!r}")
            milvus.open_index(self.embedder.dim)
            self._backend = milvus
            self._cached = CachedEmbedder(
                self.embedder,
                cache_file,
                progress=progress,
                batch_size=embed_batch_size,
            )
        else:
            from glm_agent.retrieval._local_backend import LocalBackend
            from glm_agent.retrieval._store import Store

            # the embedder the folder was built with is read before the backend is opened,
            # because repairing the index needs that embedder's vectors
            store = Store(self.path / "kb.sqlite")
            built_with = store.get_meta("embedder")
            store.close()
            self.embedder = resolve_embedder(embedder if embedder is not None else built_with)
            self._check_embedder(built_with, str(self.path))
            self._cached = CachedEmbedder(
                self.embedder,
                cache_file,
                progress=progress,
                batch_size=embed_batch_size,
            )
            self._backend = LocalBackend(
                self.path,
                dim=self.embedder.dim,
                index_kind=index_kind,
                device=device,
                embed_rows=lambda rows: self._cached.embed([self._text_of(r) for r in rows]),
            )
        self.backend = backend
        if built_with is None:
            self._backend.set_meta("embedder", self.embedder.name)

    def _check_embedder(self, built_with: str | None, where: str) -> None:
        if built_with is not None and built_with != self.embedder.name:
            raise UserError(
                f"{where} was built with embedder {built_with!r}, not {self.embedder.name!r}; "
                f"open it with embedder={built_with!r} or use a new one"
            )

    @staticmethod
    def _text_of(row: Row) -> str:
        return index_text(row.citation.title, row.citation.heading_path, row.text)

    # --- ingest -----------------------------------------------------------------------------

    def ingest(
        self,
        path: str | Path,
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        tags: Sequence[str] = (),
        tenant: str | None = None,
        progress: ProgressCallback | None = None,
        prune: bool = True,
        source_root: str | None = None,
    ) -> IngestReport:
        """Bring the knowledge base in line with the files under `path`.

        New files are added, changed ones (by content hash) re-chunked, unchanged ones skipped,
        and files previously ingested under `path` that are gone (or now excluded, or now empty)
        removed. Unreadable files are reported in `failed` and do not stop the ingest; a folder
        that cannot be listed stops it before anything is changed (`FolderReadError`). Files are
        stored in groups as they are embedded: a killed ingest keeps what it stored, and the
        next one resumes from the embedding cache.

        Args:
            path: A file or folder.
            include: Globs of files to take (default: every supported type).
            exclude: Globs of files to leave out.
            tags: Tags stored on every chunk (filter with `filters={"tags": [...]}`).
            tenant: Tenant stored on every chunk (filter with `filters={"tenant": ...}`).
            progress: Called with an `IngestProgress` at each step (files, embedding batches).
            prune: Remove files previously ingested under `path` that are no longer there.
            source_root: Record sources as `source_root/<path relative to path>` instead of
                absolute paths, so that processes holding the same files in different places
                (server replicas) address the same documents.
        """
        return ingest_path(
            self,
            Path(path),
            include=include,
            exclude=exclude,
            tags=tags,
            tenant=tenant,
            progress=progress,
            prune=prune,
            source_root=source_root,
        )

    def add_documents(
        self, documents: Iterable[Mapping[str, Any]], *, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Add or update documents given as data rather than files.

        Args:
            documents: Mappings with `id` and `text`, optionally `title` and `metadata`
                (tags, tenant, ...). A document whose id and content are unchanged is skipped.
            progress: Called with an `IngestProgress` at each step.
        """
        t0 = time.perf_counter()
        report = IngestReport()
        docs = list(documents)
        with self._ingest_lock:
            known = self._backend.file_hashes()
            batch = Batcher(self, report, progress, len(docs), known)
            try:
                for d in docs:
                    source, text = str(d["id"]), str(d["text"])
                    title, meta = str(d.get("title") or ""), dict(d.get("metadata") or {})
                    payload = json.dumps([title, text, meta], sort_keys=True, ensure_ascii=False)
                    digest = hashlib.sha256(payload.encode()).hexdigest()
                    if known.get(source) == digest:
                        report.skipped.append(source)
                        batch.finished(source, "skipped")
                        continue
                    batch.add(source, digest, title, [Section(text)], meta)
                batch.flush()
            finally:
                batch.close()
            if batch.emptied:
                report.removed = sorted(batch.emptied)
                with self._lock:
                    self._backend.write(
                        [], np.zeros((0, self.embedder.dim), np.float32), report.removed
                    )
            self._backend.checkpoint()
        report.seconds = time.perf_counter() - t0
        return report

    def delete(self, sources: Sequence[str]) -> int:
        """Remove documents by source (file path or document id); returns chunks removed."""
        with self._ingest_lock, self._lock:
            _, dropped = self._backend.write(
                [], np.zeros((0, self.embedder.dim), np.float32), list(sources)
            )
            self._backend.checkpoint()
        return dropped

    # --- search -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 5,
        filters: Mapping[str, Any] | None = None,
        mode: SearchMode = "hybrid",
        *,
        query_vector: npt.NDArray[np.float32] | None = None,
        candidates: int | None = None,
        per_document: int | Literal["default"] | None = "default",
    ) -> list[Hit]:
        """The `k` passages that best answer `query`. Thread-safe.

        Args:
            query: The question.
            k: How many hits.
            filters: Metadata that hits must have: `source`, `tenant`, `tags` (any of a list), or
                any other metadata key; a list value means any of its items (None among them: a
                chunk without the key). With Milvus the filter is evaluated by Milvus.
            mode: "hybrid" (dense and BM25 fused; BM25 alone when the embedder declares languages
                that exclude the query's), "dense" or "bm25".
            query_vector: The query's embedding, if already computed.
            candidates: Results each retriever contributes before fusion / reranking
                (default max(4k, 50), doubled when passages are limited per document).
            per_document: At most this many passages per document (None: no limit; default:
                the knowledge base's `per_document`, 1 unless set).
        """
        if mode not in _MODES:
            raise UserError(f"unknown search mode {mode!r}; valid modes: {', '.join(_MODES)}")
        if not tracing.enabled():
            return self._search(query, k, filters, mode, query_vector, candidates, per_document)
        attributes = {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.data_source.id": self.path.name,
            "glm_agent.retrieval.k": k,
            "glm_agent.retrieval.mode": mode,
            "glm_agent.retrieval.filters": sorted(filters) if filters else None,
        }
        with tracing.span(f"retrieval {self.path.name}", attributes) as span:
            if tracing.capture_content():
                span.set_attribute("gen_ai.retrieval.query.text", tracing.redact_text(query))
            hits = self._search(query, k, filters, mode, query_vector, candidates, per_document)
            span.set_attribute("glm_agent.retrieval.hits", len(hits))
            span.set_attribute("glm_agent.retrieval.scores", [round(h.score, 6) for h in hits])
            span.set_attribute("glm_agent.retrieval.sources", [h.citation.source for h in hits])
            documents = [{"id": h.citation.source, "score": h.score} for h in hits]
            span.set_attribute("gen_ai.retrieval.documents", json.dumps(documents))
            return hits

    def _search(
        self,
        query: str,
        k: int,
        filters: Mapping[str, Any] | None,
        mode: SearchMode,
        query_vector: npt.NDArray[np.float32] | None,
        candidates: int | None,
        per_document: int | Literal["default"] | None,
    ) -> list[Hit]:
        if k <= 0:
            return []
        cap = self.per_document if per_document == "default" else per_document
        depth = candidates or max(4 * k, 50) * (2 if cap is not None else 1)
        if mode == "hybrid" and not covers(self.embedder, query):
            mode = "bm25"  # the embedder does not know the query's language: its scores are noise
        if mode != "bm25" and query_vector is None:
            query_vector = self.embedder.embed([query])[0]
        f = dict(filters or {})
        empty = (np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        dense = bm25 = empty
        if mode != "bm25":
            assert query_vector is not None
            dense = self._backend.dense(np.asarray(query_vector, dtype=np.float32), depth, f)
        if mode != "dense":
            bm25 = self._backend.lexical(query, tokenize(query), depth, f)
        if mode == "hybrid" and self.fusion == "convex":
            scores, ids = convex_fuse([dense, bm25], weights=[self.dense_weight, 1.0])
        elif mode == "hybrid":
            scores, ids = rrf_fuse(
                [dense[1], bm25[1]], k=self.rrf_k, weights=[self.dense_weight, 1.0]
            )
        else:
            scores, ids = dense if mode == "dense" else bm25
        # the rows of every candidate when they are reranked or grouped; else just the top k
        top = depth if self.reranker is not None or cap is not None else k
        found = self._backend.rows(ids[:top].tolist())
        ranked = [
            (found[int(i)], float(s))
            for i, s in zip(ids[:top], scores, strict=False)
            if int(i) in found
        ]
        if self.reranker is not None and ranked:
            rs = self.reranker.score(query, [self._text_of(r) for r, _ in ranked])
            order = np.argsort(-rs, kind="stable")
            ranked = [(ranked[o][0], float(rs[o])) for o in order]
        hits: list[Hit] = []
        per_source: dict[str, int] = {}
        for row, score in ranked:
            src = row.citation.source
            if cap is not None and per_source.get(src, 0) >= cap:
                continue
            per_source[src] = per_source.get(src, 0) + 1
            hits.append(Hit(row.text, score, row.citation, dict(row.metadata)))
            if len(hits) == k:
                break
        return hits

    async def asearch(
        self,
        query: str,
        k: int = 5,
        filters: Mapping[str, Any] | None = None,
        mode: SearchMode = "hybrid",
        *,
        per_document: int | Literal["default"] | None = "default",
    ) -> list[Hit]:
        """`search` on a worker thread, for async callers."""
        call = functools.partial(self.search, query, k, filters, mode, per_document=per_document)
        return await anyio.to_thread.run_sync(call)

    def documents(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The documents held (one per source), with their title and chunk count.

        Args:
            filters: Metadata their chunks must have, as in `search` (e.g. a tenant).
        """
        out: dict[str, dict[str, Any]] = {}
        for row in self._backend.chunks(filters or {}):
            c = row.citation
            doc = out.setdefault(c.source, {"source": c.source, "title": c.title, "chunks": 0})
            doc["chunks"] += 1
        return sorted(out.values(), key=lambda d: str(d["source"]))

    def document_text(self, source: str, filters: Mapping[str, Any] | None = None) -> str | None:
        """The text of one document, its chunks in order (None when there is no such document,
        or `filters` exclude it)."""
        rows = self._backend.chunks(filters or {}, source=source)
        if not rows:
            return None
        rows.sort(key=lambda r: int(r.citation.chunk_id.rsplit("#", 1)[1]))
        return "\n\n".join(r.text for r in rows)

    def file_hashes(self) -> dict[str, str]:
        """Every stored document's source (file path or id) with its content hash."""
        return self._backend.file_hashes()

    def format_context(self, hits: Sequence[Hit]) -> str:
        """Hits as a numbered context block (see the module function `format_context`)."""
        return format_context(hits)

    def stats(self) -> dict[str, Any]:
        """Counts and settings: documents, chunks, vectors, index type, embedder, storage."""
        return {
            "path": str(self.path),
            "backend": self.backend,
            **self._backend.stats(),
            "embedder": self.embedder.name,
            "dim": self.embedder.dim,
        }

    def as_langchain_retriever(self, k: int = 5, mode: SearchMode = "hybrid") -> Any:
        """A langchain-core `BaseRetriever` over this knowledge base (needs langchain-core)."""
        from glm_agent.retrieval._langchain import make_retriever

        return make_retriever(self, k=k, mode=mode)

    def close(self) -> None:
        """Save what is pending and close the connections."""
        self._cached.close()
        self._backend.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
