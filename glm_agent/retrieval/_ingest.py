"""The ingest pipeline: files read, chunked, embedded and stored in batches, with progress.

Embeddings reach the cache batch by batch as they are computed, and files reach the backend in
groups (every `commit_chunks` chunks or `commit_seconds`), each file recorded with its hash only
once its chunks are stored: an ingest killed at any point keeps every file it had stored, and the
next one skips them and takes the rest from the embedding cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from glm_agent.retrieval._store import NewFile
from glm_agent.retrieval.chunking import chunk_sections
from glm_agent.retrieval.lexical import tokenize
from glm_agent.retrieval.loaders import DocumentLoadError, iter_files, read_document
from glm_agent.retrieval.records import FileFailure, IngestProgress, IngestReport, Section

if TYPE_CHECKING:
    from glm_agent.retrieval.knowledge_base import KnowledgeBase

ProgressCallback = Callable[[IngestProgress], None]


def index_text(title: str, headings: tuple[str, ...] | list[str], text: str) -> str:
    """What is embedded and BM25-indexed: the passage under its title and headings."""
    head = " > ".join([title, *headings]) if title else " > ".join(headings)
    return f"{head}\n{text}" if head else text


class Batcher:
    """Collects prepared files and writes them to the knowledge base's backend in groups."""

    def __init__(
        self,
        kb: KnowledgeBase,
        report: IngestReport,
        progress: ProgressCallback | None,
        files_total: int,
        known: dict[str, str],
    ) -> None:
        self.kb, self.report, self.progress = kb, report, progress
        self.files_total, self.known = files_total, known
        self.files_done = 0
        self.emptied: list[str] = []
        self._pending: list[tuple[NewFile, npt.NDArray[np.float32]]] = []
        self._chunks = 0
        self._since = time.monotonic()
        self._pool = ThreadPoolExecutor(1)

    def emit(self, event: Any, path: str = "", done: int = 0, total: int = 0) -> None:
        if self.progress is not None:
            self.progress(
                IngestProgress(event, path, self.files_done, self.files_total, done, total)
            )

    def finished(self, path: str, event: str = "stored") -> None:
        """A file is done: `stored`, `skipped` (unchanged) or `failed` (unreadable, no text)."""
        self.files_done += 1
        self.emit(event, path)

    def add(
        self, source: str, digest: str, title: str, sections: list[Section], meta: dict[str, Any]
    ) -> None:
        """Chunk, tokenise and embed one file, and write it once enough is pending."""
        kb = self.kb
        self.emit("file", source)
        chunks = chunk_sections(
            sections,
            source=source,
            title=title,
            chunk_size=kb.chunk_size,
            overlap=kb.overlap,
            count_tokens=kb.count_tokens,
            metadata=meta,
        )
        if not chunks:
            self.report.empty.append(source)
            if source in self.known:
                self.emptied.append(source)
            self.finished(source, "failed")
            return
        texts = [index_text(c.title, c.heading_path, c.text) for c in chunks]
        # BM25 tokenising (jieba: Python, holds the GIL) runs beside the embedder (torch releases
        # the GIL), so ingest runs at nearly the embedder's own speed
        tokens = self._pool.submit(lambda: [tokenize(t) for t in texts])
        xb = kb._cached.embed(
            texts, on_progress=lambda done, total: self.emit("embedded", source, done, total)
        )
        self._pending.append((NewFile(source, digest, title, chunks, tokens.result()), xb))
        self._chunks += len(chunks)
        if self._chunks >= kb.commit_chunks or time.monotonic() - self._since > kb.commit_seconds:
            self.flush()

    def flush(self) -> None:
        """Write what is pending (each file replacing its earlier version)."""
        if not self._pending:
            return
        new = [f for f, _ in self._pending]
        xb = np.vstack([x for _, x in self._pending])
        with self.kb._lock:
            added, _ = self.kb._backend.write(new, xb, [])
        self.report.chunks_added += added
        for f in new:
            (self.report.updated if f.source in self.known else self.report.added).append(f.source)
            self.finished(f.source)
        self._pending, self._chunks, self._since = [], 0, time.monotonic()

    def close(self) -> None:
        self._pool.shutdown()


def ingest_path(
    kb: KnowledgeBase,
    path: Path,
    *,
    include: Sequence[str] | None,
    exclude: Sequence[str],
    tags: Sequence[str],
    tenant: str | None,
    progress: ProgressCallback | None,
    prune: bool,
    source_root: str | None,
) -> IngestReport:
    """`KnowledgeBase.ingest`: bring `kb` in line with the files under `path` (see there)."""
    t0 = time.perf_counter()
    root = Path(path).resolve()
    report = IngestReport()
    meta: dict[str, Any] = {"tags": list(tags)} if tags else {}
    if tenant is not None:
        meta["tenant"] = tenant
    salt = json.dumps(meta, sort_keys=True).encode()  # new tags or tenant re-index a file
    files = list(iter_files(root, include=include, exclude=exclude))  # may fail: no change
    base = root if root.is_dir() else root.parent

    def source_of(f: Path) -> str:
        if source_root is None:
            return str(f.resolve())
        return f"{source_root.rstrip('/')}/{f.relative_to(base).as_posix()}"

    with kb._ingest_lock:
        known = kb._backend.file_hashes()
        batch = Batcher(kb, report, progress, len(files), known)
        batch.emit("start")
        seen: set[str] = set()
        try:
            for f in files:
                source = source_of(f)
                seen.add(source)
                try:
                    digest = hashlib.sha256(f.read_bytes() + salt).hexdigest()
                    if known.get(source) == digest:
                        report.skipped.append(source)
                        batch.finished(source, "skipped")
                        continue
                    doc = read_document(f)
                except (DocumentLoadError, OSError) as e:
                    report.failed.append(FileFailure(source, str(e)))
                    batch.finished(source, "failed")
                    continue
                report.warnings += [f"{source}: {n}" for n in doc.notes]
                batch.add(source, digest, doc.title, doc.sections, meta)
            batch.flush()
        finally:
            batch.close()
        if source_root is not None:
            prefix = source_of(root) if root.is_file() else source_root.rstrip("/") + "/"
        else:
            prefix = str(root) if root.is_file() else str(root).rstrip("/") + "/"
        gone = [s for s in known if (s == prefix or s.startswith(prefix)) and s not in seen]
        report.removed = sorted({*(gone if prune else []), *batch.emptied})
        if report.removed:
            with kb._lock:
                kb._backend.write([], np.zeros((0, kb.embedder.dim), np.float32), report.removed)
        kb._backend.checkpoint()
        report.seconds = time.perf_counter() - t0
        batch.emit("done")
    return report
