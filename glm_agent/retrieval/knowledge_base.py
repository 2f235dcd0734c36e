"""`KnowledgeBase`: a folder that ingests documents incrementally and answers hybrid searches.

```python
kb = KnowledgeBase("kb/")                    # the bundled MiniLM embedder; "test" in tests
report = kb.ingest("docs/", exclude=["drafts/*"])
hits = kb.search("how do I get a refund?", k=5, filters={"tenant": "acme"})
prompt_context = format_context(hits)
```

The folder holds `kb.sqlite` (files, chunks, settings), `index.faiss` (vectors, saved atomically)
and `embeddings.sqlite` (the embedding cache). If a crash leaves the index behind the catalogue,
opening the folder brings the index up to date from the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import numpy as np
import numpy.typing as npt

import glm_agent.tracing as tracing
from glm_agent.exceptions import UserError
from glm_agent.retrieval._store import NewFile, Row, Store, row_of
from glm_agent.retrieval.chunking import TokenCounter, chunk_sections
from glm_agent.retrieval.context import format_context
from glm_agent.retrieval.embedders import Embedder, covers, resolve_embedder
from glm_agent.retrieval.embedding_cache import CachedEmbedder
from glm_agent.retrieval.faiss_index import FaissIndex
from glm_agent.retrieval.lexical import BM25Index, convex_fuse, rrf_fuse, tokenize
from glm_agent.retrieval.loaders import DocumentLoadError, iter_files, load_file
from glm_agent.retrieval.records import FileFailure, Hit, IngestReport, Section
from glm_agent.retrieval.rerank import Reranker

__all__ = ["KnowledgeBase", "SearchMode"]

SearchMode = Literal["hybrid", "dense", "bm25"]
_MODES = ("hybrid", "dense", "bm25")


def _index_text(title: str, headings: Sequence[str], text: str) -> str:
    """What is embedded and BM25-indexed: the passage under its title and headings."""
    head = " > ".join([title, *headings]) if title else " > ".join(headings)
    return f"{head}\n{text}" if head else text


def _matches(row: Row, filters: Mapping[str, Any]) -> bool:
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


class KnowledgeBase:
    """Documents in a folder, searchable by meaning (FAISS) and by words (BM25), with citations.

    Args:
        path: The knowledge base's folder (created if missing).
        embedder: An Embedder or a name for `resolve_embedder` (None: the one the folder was built
            with, else the bundled MiniLM).
        chunk_size: Most tokens per chunk.
        overlap: Tokens repeated between consecutive chunks.
        count_tokens: Token counter for chunking (default: a fast estimate).
        index_kind: "auto" (by corpus size), "flat", "hnsw" or "ivfpq".
        device: "auto" (GPU when faiss has one), "cpu" or "gpu".
        reranker: A cross-encoder to reorder the top results, if any.
        fusion: How hybrid search merges the two rankings: "convex" (a weighted sum of min-max
            scaled scores) or "rrf" (reciprocal ranks).
        rrf_k: The reciprocal-rank-fusion constant (fusion="rrf").
        dense_weight: Weight of the dense scores in hybrid fusion (BM25's is 1). The defaults
            (convex, 0.1) were chosen on the dev queries of benchmarks/retrieval.py with the
            default English MiniLM embedder, as the grid point whose worse gap to the better
            single retriever over both sets was smallest; with a strong multilingual embedder
            (bge-m3) raise it.
        progress: Show a progress bar while embedding.
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
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.chunk_size, self.overlap, self.count_tokens = chunk_size, overlap, count_tokens
        if fusion not in ("rrf", "convex"):
            raise UserError(f"unknown fusion {fusion!r}; valid: rrf, convex")
        self.reranker, self.rrf_k, self.dense_weight = reranker, rrf_k, dense_weight
        self.fusion = fusion
        self._store = Store(self.path / "kb.sqlite")
        built_with = self._store.get_meta("embedder")
        self.embedder = resolve_embedder(embedder if embedder is not None else built_with)
        if built_with is not None and built_with != self.embedder.name:
            raise UserError(
                f"{self.path} was built with embedder {built_with!r}, not {self.embedder.name!r}; "
                f"open it with embedder={built_with!r} or use a new folder"
            )
        self._store.set_meta("embedder", self.embedder.name)
        self._cached = CachedEmbedder(
            self.embedder, self.path / "embeddings.sqlite", progress=progress
        )
        self._lock = threading.RLock()
        self._ingest_lock = threading.Lock()
        index_path = self.path / "index.faiss"
        if index_path.exists():
            self._index = FaissIndex.load(index_path, device=device)
        else:
            self._index = FaissIndex(self.embedder.dim, kind=index_kind, device=device)
        self._rows: dict[int, Row] = {}
        self._bm25 = BM25Index()
        ids, toks = [], []
        for row, tokens in self._store.rows():
            self._rows[row.id] = row
            ids.append(row.id)
            toks.append(tokens)
        self._bm25.set(ids, toks)
        self._reconcile()

    def _reconcile(self) -> None:
        """Bring the vector index in line with the catalogue (after a crash between the two)."""
        have = set(self._index.ids().tolist())
        want = set(self._rows)
        extra, missing = sorted(have - want), sorted(want - have)
        if extra:
            self._index.delete(extra)
        if missing:
            texts = [self._text_of(self._rows[i]) for i in missing]
            self._index.add(self._cached.embed(texts), missing)
        if extra or missing:
            self._index.save(self.path / "index.faiss")

    @staticmethod
    def _text_of(row: Row) -> str:
        return _index_text(row.citation.title, row.citation.heading_path, row.text)

    # --- ingest -----------------------------------------------------------------------------

    def ingest(
        self,
        path: str | Path,
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        tags: Sequence[str] = (),
        tenant: str | None = None,
    ) -> IngestReport:
        """Bring the knowledge base in line with the files under `path`.

        New files are added, changed ones (by content hash) re-chunked, unchanged ones skipped,
        and files previously ingested under `path` that are gone (or now excluded) removed.
        Unreadable files are reported in `failed` and do not stop the ingest.

        Args:
            path: A file or folder.
            include: Globs of files to take (default: every supported type).
            exclude: Globs of files to leave out.
            tags: Tags stored on every chunk (filter with `filters={"tags": [...]}`).
            tenant: Tenant stored on every chunk (filter with `filters={"tenant": ...}`).
        """
        t0 = time.perf_counter()
        root = Path(path).resolve()
        report = IngestReport()
        meta: dict[str, Any] = {"tags": list(tags)} if tags else {}
        if tenant is not None:
            meta["tenant"] = tenant
        salt = json.dumps(meta, sort_keys=True)  # new tags or tenant re-index a file
        with self._ingest_lock:
            known = self._store.file_hashes()
            new: list[NewFile] = []
            seen: set[str] = set()
            for f in iter_files(root, include=include, exclude=exclude):
                source = str(f.resolve())
                seen.add(source)
                try:
                    digest = hashlib.sha256(f.read_bytes() + salt.encode()).hexdigest()
                    if known.get(source) == digest:
                        report.skipped.append(source)
                        continue
                    title, sections = load_file(f)
                except (DocumentLoadError, OSError) as e:
                    report.failed.append(FileFailure(source, str(e)))
                    continue
                new.append(self._prepare(source, digest, title, sections, meta))
                (report.updated if source in known else report.added).append(source)
            prefix = str(root) if root.is_file() else str(root).rstrip("/") + "/"
            report.removed = sorted(
                s for s in known if (s == prefix or s.startswith(prefix)) and s not in seen
            )
            report.chunks_added = self._apply(new, report.removed)
        report.seconds = time.perf_counter() - t0
        return report

    def add_documents(self, documents: Iterable[Mapping[str, Any]]) -> IngestReport:
        """Add or update documents given as data rather than files.

        Args:
            documents: Mappings with `id` and `text`, optionally `title` and `metadata`
                (tags, tenant, ...). A document whose id and content are unchanged is skipped.
        """
        t0 = time.perf_counter()
        report = IngestReport()
        with self._ingest_lock:
            known = self._store.file_hashes()
            new: list[NewFile] = []
            for d in documents:
                source, text = str(d["id"]), str(d["text"])
                title, meta = str(d.get("title") or ""), dict(d.get("metadata") or {})
                payload = json.dumps([title, text, meta], sort_keys=True, ensure_ascii=False)
                digest = hashlib.sha256(payload.encode()).hexdigest()
                if known.get(source) == digest:
                    report.skipped.append(source)
                    continue
                new.append(self._prepare(source, digest, title, [Section(text)], meta))
                (report.updated if source in known else report.added).append(source)
            report.chunks_added = self._apply(new, [])
        report.seconds = time.perf_counter() - t0
        return report

    def delete(self, sources: Sequence[str]) -> int:
        """Remove documents by source (file path or document id); returns chunks removed."""
        with self._ingest_lock:
            return self._apply([], list(sources), count_removed=True)

    def _prepare(
        self, source: str, digest: str, title: str, sections: list[Section], meta: dict[str, Any]
    ) -> NewFile:
        chunks = chunk_sections(
            sections,
            source=source,
            title=title,
            chunk_size=self.chunk_size,
            overlap=self.overlap,
            count_tokens=self.count_tokens,
            metadata=meta,
        )
        return NewFile(source, digest, title, chunks, [])  # tokens: filled in by `_apply`

    def _apply(self, new: list[NewFile], removed: list[str], *, count_removed: bool = False) -> int:
        texts = [_index_text(c.title, c.heading_path, c.text) for f in new for c in f.chunks]
        # BM25 tokenising (jieba: Python, holds the GIL) runs beside the embedder (torch releases
        # the GIL), so ingest runs at nearly the embedder's own speed; both happen before the
        # lock is taken, so searches go on meanwhile
        with ThreadPoolExecutor(1) as pool:
            tokens = pool.submit(lambda: [tokenize(t) for t in texts])
            xb = self._cached.embed(texts)
            flat = iter(tokens.result())
        for f in new:
            f.tokens[:] = [next(flat) for _ in f.chunks]
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
            if dropped or added:
                self._index.save(self.path / "index.faiss")
        return len(dropped) if count_removed else len(added)

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
    ) -> list[Hit]:
        """The `k` passages that best answer `query`. Thread-safe.

        Args:
            query: The question.
            k: How many hits.
            filters: Metadata that hits must have: `source`, `tenant`, `tags` (any of a list), or
                any other metadata key; a list value means any of its items.
            mode: "hybrid" (dense and BM25 fused; BM25 alone when the embedder declares languages
                that exclude the query's), "dense" or "bm25".
            query_vector: The query's embedding, if already computed.
            candidates: Results each retriever contributes before fusion / reranking
                (default max(4k, 50)).
        """
        if mode not in _MODES:
            raise UserError(f"unknown search mode {mode!r}; valid modes: {', '.join(_MODES)}")
        if not tracing.enabled():
            return self._search(query, k, filters, mode, query_vector, candidates)
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
            hits = self._search(query, k, filters, mode, query_vector, candidates)
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
    ) -> list[Hit]:
        if k <= 0:
            return []
        depth = candidates or max(4 * k, 50)
        if mode == "hybrid" and not covers(self.embedder, query):
            mode = "bm25"  # the embedder does not know the query's language: its scores are noise
        if mode != "bm25" and query_vector is None:
            query_vector = self.embedder.embed([query])[0]
        with self._lock:
            allowed = None
            if filters:
                allowed = np.array(
                    [i for i, r in self._rows.items() if _matches(r, filters)], dtype=np.int64
                )
                if len(allowed) == 0:
                    return []
            dense_D = bm25_D = np.zeros(0, dtype=np.float32)
            dense_I = bm25_I = np.zeros(0, dtype=np.int64)
            if mode != "bm25":
                assert query_vector is not None
                D, I = self._index.search(query_vector[None, :], depth, allowed=allowed)  # noqa: E741
                keep = I[0] >= 0
                dense_D, dense_I = D[0][keep], I[0][keep]
            if mode != "dense":
                bm25_D, bm25_I = self._bm25.search(query, depth, allowed=allowed)
            if mode == "hybrid" and self.fusion == "convex":
                scores, ids = convex_fuse(
                    [(dense_D, dense_I), (bm25_D, bm25_I)], weights=[self.dense_weight, 1.0]
                )
            elif mode == "hybrid":
                scores, ids = rrf_fuse(
                    [dense_I, bm25_I], k=self.rrf_k, weights=[self.dense_weight, 1.0]
                )
            elif mode == "dense":
                scores, ids = dense_D, dense_I
            else:
                scores, ids = bm25_D, bm25_I
            rows = [self._rows[int(i)] for i in ids[: depth if self.reranker else k]]
            scores = scores[: len(rows)]
        if self.reranker is not None and rows:
            rs = self.reranker.score(query, [self._text_of(r) for r in rows])
            order = np.argsort(-rs, kind="stable")[:k]
            rows, scores = [rows[o] for o in order], rs[order]
        return [
            Hit(r.text, float(s), r.citation, dict(r.metadata))
            for r, s in zip(rows[:k], scores[:k], strict=True)
        ]

    async def asearch(
        self,
        query: str,
        k: int = 5,
        filters: Mapping[str, Any] | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        """`search` on a worker thread, for async callers."""
        call = functools.partial(self.search, query, k, filters, mode)
        return await anyio.to_thread.run_sync(call)

    def documents(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The documents held (one per source), with their title and chunk count.

        Args:
            filters: Metadata their chunks must have, as in `search` (e.g. a tenant).
        """
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for row in self._rows.values():
                if filters and not _matches(row, filters):
                    continue
                c = row.citation
                doc = out.setdefault(c.source, {"source": c.source, "title": c.title, "chunks": 0})
                doc["chunks"] += 1
        return sorted(out.values(), key=lambda d: str(d["source"]))

    def document_text(self, source: str, filters: Mapping[str, Any] | None = None) -> str | None:
        """The text of one document, its chunks in order (None when there is no such document,
        or `filters` exclude it)."""
        with self._lock:
            rows = [
                r
                for r in self._rows.values()
                if r.citation.source == source and (not filters or _matches(r, filters))
            ]
        if not rows:
            return None
        rows.sort(key=lambda r: int(r.citation.chunk_id.rsplit("#", 1)[1]))
        return "\n\n".join(r.text for r in rows)

    def format_context(self, hits: Sequence[Hit]) -> str:
        """Hits as a numbered context block (see the module function `format_context`)."""
        return format_context(hits)

    def stats(self) -> dict[str, Any]:
        """Counts and settings: documents, chunks, vectors, index type, embedder, bytes on disk."""
        files, chunks = self._store.counts()
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        with self._lock:
            return {
                "path": str(self.path),
                "documents": files,
                "chunks": chunks,
                "vectors": self._index.ntotal,
                "index": self._index.current_kind,
                "embedder": self.embedder.name,
                "dim": self.embedder.dim,
                "disk_bytes": size,
            }

    def as_langchain_retriever(self, k: int = 5, mode: SearchMode = "hybrid") -> Any:
        """A langchain-core `BaseRetriever` over this knowledge base (needs langchain-core)."""
        from glm_agent.retrieval._langchain import make_retriever

        return make_retriever(self, k=k, mode=mode)

    def close(self) -> None:
        """Close the SQLite connections."""
        self._cached.close()
        self._store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
