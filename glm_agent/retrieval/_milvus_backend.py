"""A knowledge base in Milvus: chunks, vectors, BM25 terms and the file catalogue, shared.

Two collections: `{name}` (a row per chunk, see `MilvusIndex`) and `{name}_files` (a row per file
with its content hash, and the settings). A chunk's id is a hash of `source#position`, so two
processes ingesting the same folder at once write the same rows rather than two copies; a file's
hash is recorded only after its chunks are stored, and its older chunks are removed after that,
so a process killed half way leaves the file to be redone by the next ingest, never a gap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from glm_agent.retrieval._backend import Scores
from glm_agent.retrieval._store import NewFile, Row, row_of
from glm_agent.retrieval.milvus_filter import encode_terms, milvus_filter
from glm_agent.retrieval.milvus_index import MilvusIndex, Terms, connect_milvus, open_or_create

__all__ = ["MilvusBackend", "chunk_id"]

_FILE, _META = "file:", "meta:"


def chunk_id(source: str, position: int) -> int:
    """The int64 id of a chunk: the same on every process for the same source and position."""
    digest = hashlib.blake2b(f"{source}#{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def _lit(value: str) -> str:
    """A Milvus string literal (JSON's quoting is Milvus')."""
    return json.dumps(value, ensure_ascii=False)


class MilvusBackend:
    """Chunks in a Milvus collection; dense search, BM25 and filters all run in Milvus.

    Args:
        uri: `http(s)://host:port` (a server or cluster) or a `.db` path (Milvus Lite).
        dim: Vector dimension.
        collection: The chunks collection's name (`{collection}_files` holds the catalogue).
        token: Server credentials.
        index_type: Milvus' vector index (AUTOINDEX, FLAT, HNSW, IVF_FLAT).
        terms: "glm-agent" (our BM25 terms, stored in Milvus) or "jieba" (Milvus' analyzer).
    """

    name = "milvus"

    def __init__(
        self,
        uri: str,
        *,
        collection: str = "glm_agent",
        token: str | None = None,
        index_type: str = "AUTOINDEX",
        terms: Terms = "glm-agent",
    ) -> None:
        self.uri, self.collection, self.token = uri, collection, token
        self.index_type, self.terms = index_type, terms
        self._client = connect_milvus(uri, token=token)
        self._index: MilvusIndex | None = None
        self._written = False
        self._files = f"{collection}_files"
        open_or_create(self._client, self._files, self._create_files)

    def open_index(self, dim: int) -> None:
        """Open (or create) the chunks collection, for vectors of `dim` (known once the
        embedder is, which may be read from this backend's settings first)."""
        self._index = MilvusIndex(
            self.uri,
            dim,
            collection=self.collection,
            index_type=self.index_type,
            terms=self.terms,
            client=self._client,
        )

    @property
    def index(self) -> MilvusIndex:
        """The chunks collection."""
        if self._index is None:
            raise RuntimeError("open_index() first")
        return self._index

    def _create_files(self) -> None:
        from glm_agent.retrieval.milvus_index import _pymilvus

        DataType = _pymilvus().DataType
        s = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=4200)
        s.add_field("hash", DataType.VARCHAR, max_length=4096)
        s.add_field("title", DataType.VARCHAR, max_length=4096)
        s.add_field("chunks", DataType.INT64)
        # Milvus wants a vector field in every collection; this one is never searched
        s.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
        ip = self._client.prepare_index_params()
        ip.add_index("unused", index_type="FLAT", metric_type="IP")
        self._client.create_collection(
            self._files, schema=s, index_params=ip, consistency_level="Strong"
        )

    def _put(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            r.setdefault("unused", [1.0, 0.0])
        for s in range(0, len(rows), 1000):
            self._client.upsert(self._files, rows[s : s + 1000])

    # --- catalogue --------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        res = self._client.get(self._files, ids=[_META + key], output_fields=["hash"])
        return str(res[0]["hash"]) if res else None

    def set_meta(self, key: str, value: str) -> None:
        self._put([{"key": _META + key, "hash": value, "title": "", "chunks": 0}])

    def file_hashes(self) -> dict[str, str]:
        it = self._client.query_iterator(
            self._files, batch_size=1000, filter=f"key like {_lit(_FILE + '%')}",
            output_fields=["key", "hash"],
        )  # fmt: skip
        out: dict[str, str] = {}
        try:
            while batch := it.next():
                out.update((str(r["key"])[len(_FILE) :], str(r["hash"])) for r in batch)
        finally:
            it.close()
        return out

    def write(
        self, new: Sequence[NewFile], xb: npt.NDArray[np.float32], removed: Sequence[str]
    ) -> tuple[int, int]:
        rows, ids = [], []
        for f in new:
            for c, toks in zip(f.chunks, f.tokens, strict=True):
                meta = dict(c.metadata)
                terms = encode_terms(toks) if self.index.terms == "glm-agent" else _index_text(c)
                ids.append(chunk_id(f.source, c.position))
                rows.append(
                    {
                        "source": c.source,
                        "tenant": meta.get("tenant"),
                        "file_hash": f.hash,
                        "position": c.position,
                        "title": c.title,
                        "page": c.page,
                        "headings": list(c.heading_path),
                        "text": c.text,
                        "metadata": meta,
                        "terms": terms,
                    }
                )
        # one round trip per step for the whole group, in this order: the new versions'
        # chunks, then the old versions' leftovers, then the files' records
        if rows:
            self.index.upsert(xb[: len(rows)], ids, rows)
        for s in range(0, len(new), 100):
            stale = " or ".join(
                f"(source == {_lit(f.source)} and file_hash != {_lit(f.hash)})"
                for f in new[s : s + 100]
            )
            self.index.delete_where(stale)
        self._put(
            [
                {"key": _FILE + f.source, "hash": f.hash, "title": f.title, "chunks": len(f.chunks)}
                for f in new
            ]
        )
        self._written = self._written or bool(new or removed)
        dropped = 0
        for s in range(0, len(removed), 100):
            part = list(removed[s : s + 100])
            expr = f"source in [{', '.join(_lit(x) for x in part)}]"
            dropped += len(self.index.query(expr, ["id"]))
            self.index.delete_where(expr)
            self._client.delete(self._files, ids=[_FILE + x for x in part])
        return len(rows), dropped

    def checkpoint(self) -> None:
        """Seal what an ingest wrote: Milvus persists every write itself, but searches scan
        unsealed rows one by one (Milvus Lite: seconds per query at 50k rows) until indexed."""
        if self._written:
            self._client.flush(self.collection)
            self._written = False

    # --- search -----------------------------------------------------------------------------

    def dense(self, xq: npt.NDArray[np.float32], k: int, filters: Mapping[str, Any]) -> Scores:
        D, I = self.index.search(xq[None, :], k, filter=milvus_filter(filters))  # noqa: E741
        keep = I[0] >= 0
        return D[0][keep], I[0][keep]

    def lexical(self, query: str, terms: list[str], k: int, filters: Mapping[str, Any]) -> Scores:
        words = terms if self.index.terms == "glm-agent" else [query]
        return self.index.search_terms(words, k, filter=milvus_filter(filters))

    def rows(self, ids: Sequence[int]) -> dict[int, Row]:
        out = {}
        for r in self.index.get(list(ids)):
            i = int(r["id"])
            out[i] = row_of(
                i,
                r["source"],
                int(r["position"]),
                r["title"],
                None if r.get("page") is None else int(r["page"]),
                list(r.get("headings") or []),
                r["text"],
                dict(r.get("metadata") or {}),
            )
        return out

    def chunks(self, filters: Mapping[str, Any], source: str | None = None) -> list[Row]:
        wanted = {**filters, "source": source} if source is not None else dict(filters)
        ids = [int(r["id"]) for r in self.index.query(milvus_filter(wanted), ["id"])]
        return list(self.rows(ids).values()) if ids else []

    def stats(self) -> dict[str, Any]:
        res = self._client.query(
            self._files, filter=f"key like {_lit(_FILE + '%')}", output_fields=["count(*)"]
        )
        chunks = self.index.ntotal
        return {
            "documents": int(res[0]["count(*)"]),
            "chunks": chunks,
            "vectors": chunks,
            "index": f"milvus:{self.index.index_type}",
            "uri": self.index.uri if "@" not in self.index.uri else "(hidden)",
            "collection": self.index.collection,
        }

    def close(self) -> None:
        self._client.close()


def _index_text(c: Any) -> str:
    head = " > ".join([c.title, *c.heading_path]) if c.title else " > ".join(c.heading_path)
    return f"{head}\n{c.text}" if head else str(c.text)
