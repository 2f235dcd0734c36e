"""The records a knowledge base passes around: sections, chunks, citations, hits, ingest reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Chunk",
    "Citation",
    "FileFailure",
    "Hit",
    "IngestProgress",
    "IngestReport",
    "Section",
]


@dataclass(frozen=True)
class Section:
    """A piece of a document as a loader reads it, before chunking.

    Attributes:
        text: The section's text.
        page: 1-based page number (PDF), if the format has pages.
        heading_path: The headings above this section, outermost first.
        table: Whether `text` is a Markdown table (chunked between rows, header repeated).
    """

    text: str
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    table: bool = False


@dataclass(frozen=True)
class Citation:
    """Where a passage came from, for the answer to cite.

    Attributes:
        source: The file path (or document id) the passage was read from.
        title: The document's title.
        page: 1-based page number, if any.
        heading_path: Headings above the passage, outermost first.
        chunk_id: Stable id of the chunk (`source#position`).
    """

    source: str
    title: str
    page: int | None
    heading_path: tuple[str, ...]
    chunk_id: str

    def label(self) -> str:
        """A one-line human-readable location: `title (source, p. 3, A > B)`."""
        where = [self.source]
        if self.page is not None:
            where.append(f"p. {self.page}")
        if self.heading_path:
            where.append(" > ".join(self.heading_path))
        return f"{self.title} ({', '.join(where)})"


@dataclass(frozen=True)
class Chunk:
    """A passage ready to embed and index.

    Attributes:
        text: The passage.
        source: Its document's path or id.
        title: Its document's title.
        position: 0-based index of the chunk within its document.
        page: 1-based page, if any.
        heading_path: Headings above the passage.
        metadata: Filterable fields (`tags`, `tenant`, ...).
    """

    text: str
    source: str
    title: str
    position: int
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_id(self) -> str:
        """Stable id: `source#position`."""
        return f"{self.source}#{self.position}"


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        text: The passage.
        score: Its score under the search mode (cosine for dense, BM25 for bm25, fused RRF
            score for hybrid, the cross-encoder's score when reranked); higher is better.
        citation: Where it came from.
        metadata: The chunk's metadata (tags, tenant, ...).
    """

    text: str
    score: float
    citation: Citation
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileFailure:
    """A file that could not be ingested.

    Attributes:
        path: The file.
        reason: Why (the error message).
    """

    path: str
    reason: str


@dataclass
class IngestReport:
    """What an `ingest` call did, file by file.

    Attributes:
        added: New files indexed.
        updated: Changed files re-chunked and re-indexed.
        removed: Files gone from the folder (or now without text), removed from the index.
        skipped: Unchanged files (same content hash).
        failed: Unreadable files, with reasons; they do not stop the ingest.
        empty: Files with no text to index (empty, whitespace only, a scan without OCR):
            not added.
        warnings: Files read with a caveat (not UTF-8 throughout, characters replaced, pages
            read by OCR), one line each.
        chunks_added: Chunks embedded and indexed.
        seconds: Wall time of the ingest.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_added: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """A one-line summary of the counts."""
        return (
            f"added {len(self.added)}, updated {len(self.updated)}, removed {len(self.removed)}, "
            f"skipped {len(self.skipped)}, failed {len(self.failed)}, empty {len(self.empty)}, "
            f"warnings {len(self.warnings)}; {self.chunks_added} chunks in {self.seconds:.2f}s"
        )


@dataclass(frozen=True)
class IngestProgress:
    """A step of an ingest, passed to its `progress` callback.

    Attributes:
        event: `start` (the files are listed), `file` (a file is read, being chunked),
            `embedded` (a batch of its chunks is embedded and cached), `stored` (its chunks are
            in the index, searchable and kept), `skipped` (unchanged), `failed` (unreadable, or
            no text in it), `done` (the ingest is over).
        path: The file (empty for `start` and `done`).
        files_done: Files finished so far (stored, skipped, failed or empty).
        files_total: Files the ingest looks at.
        chunks_done: Chunks of this file embedded so far.
        chunks_total: Chunks of this file.
    """

    event: Literal["start", "file", "embedded", "stored", "skipped", "failed", "done"]
    path: str
    files_done: int
    files_total: int
    chunks_done: int = 0
    chunks_total: int = 0
