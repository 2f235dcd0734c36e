"""The knowledge base's SQLite catalogue: files with their content hashes, chunks with citations."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glm_agent.retrieval.records import Chunk, Citation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY, hash TEXT NOT NULL, title TEXT NOT NULL, chunks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, position INTEGER NOT NULL,
    title TEXT NOT NULL, page INTEGER, headings TEXT NOT NULL, text TEXT NOT NULL,
    metadata TEXT NOT NULL, tokens TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks (source);
"""


@dataclass(frozen=True)
class Row:
    """A stored chunk as searches need it."""

    id: int
    text: str
    citation: Citation
    metadata: dict[str, Any]


@dataclass(frozen=True)
class NewFile:
    """A file's new version to write: its hash, title, chunks and their BM25 tokens."""

    source: str
    hash: str
    title: str
    chunks: list[Chunk]
    tokens: list[list[str]]


class Store:
    """Files and chunks in `kb.sqlite`; every write is one transaction."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def file_hashes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT source, hash FROM files").fetchall())

    def replace(
        self, new: Sequence[NewFile], removed: Iterable[str]
    ) -> tuple[list[int], list[tuple[int, NewFile, int]]]:
        """Drop the chunks of `removed` and of every file in `new`, insert `new`'s chunks.

        Returns:
            The ids dropped, and (id, file, chunk index) for each chunk inserted.
        """
        gone = {*removed, *(f.source for f in new)}
        added: list[tuple[int, NewFile, int]] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                dropped: list[int] = []
                for source in gone:
                    dropped += [
                        r[0]
                        for r in self._db.execute(
                            "SELECT id FROM chunks WHERE source = ?", (source,)
                        )
                    ]
                    self._db.execute("DELETE FROM chunks WHERE source = ?", (source,))
                    self._db.execute("DELETE FROM files WHERE source = ?", (source,))
                for f in new:
                    for j, (c, toks) in enumerate(zip(f.chunks, f.tokens, strict=True)):
                        cur = self._db.execute(
                            "INSERT INTO chunks (source, position, title, page, headings, text, "
                            "metadata, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                c.source,
                                c.position,
                                c.title,
                                c.page,
                                json.dumps(list(c.heading_path), ensure_ascii=False),
                                c.text,
                                json.dumps(c.metadata, ensure_ascii=False),
                                json.dumps(toks, ensure_ascii=False),
                            ),
                        )
                        assert cur.lastrowid is not None
                        added.append((cur.lastrowid, f, j))
                    self._db.execute(
                        "INSERT INTO files VALUES (?, ?, ?, ?)",
                        (f.source, f.hash, f.title, len(f.chunks)),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return dropped, added

    def rows(self) -> Iterable[tuple[Row, list[str]]]:
        """Every chunk with its BM25 tokens."""
        with self._lock:
            data = self._db.execute(
                "SELECT id, source, position, title, page, headings, text, metadata, tokens "
                "FROM chunks ORDER BY id"
            ).fetchall()
        for i, source, pos, title, page, headings, text, metadata, tokens in data:
            yield (
                row_of(
                    i, source, pos, title, page, json.loads(headings), text, json.loads(metadata)
                ),
                json.loads(tokens),
            )

    def counts(self) -> tuple[int, int]:
        with self._lock:
            files = self._db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            chunks = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(files), int(chunks)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def row_of(
    i: int,
    source: str,
    position: int,
    title: str,
    page: int | None,
    headings: Sequence[str],
    text: str,
    metadata: dict[str, Any],
) -> Row:
    citation = Citation(source, title, page, tuple(headings), f"{source}#{position}")
    return Row(i, text, citation, metadata)
