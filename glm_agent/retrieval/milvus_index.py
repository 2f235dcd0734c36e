"""A Milvus collection behind the `Index` interface: vectors under int64 ids, filtered in Milvus.

```python
index = MilvusIndex("kb.db", d=384)                    # Milvus Lite: a local folder
index = MilvusIndex("http://milvus:19530", d=384)      # a Milvus server or cluster: only the URI
index.upsert(xb, ids, rows=[{"source": "a.md", "tenant": "acme", "text": "..."}, ...])
D, I = index.search(xq, k=10, filter=milvus_filter({"tenant": ["acme", None]}))
D, I = index.search_terms(["refund", "policy"], k=10)  # BM25, computed by Milvus
```

Same names as `FaissIndex` (`xb`, `xq`, `k`, `D`, `I`; -1 past the results); scores are inner
products. Each row also carries the chunk's text, citation and metadata, and its BM25 terms: a
text field that Milvus analyses and scores with its BM25 function, so lexical search, like dense
search and the filters, runs in the engine, and every process using the collection sees every
write at once (the collection is created with Strong consistency).

The BM25 terms are glm-agent's own (`lexical.tokenize`: jieba words, stemmed English without stop
words), each written in base32 so that any Milvus analyzer keeps it whole; `terms="jieba"`
instead stores the raw text under Milvus' jieba analyzer (measured worse: see
benchmarks/retrieval.py and docs/knowledge.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from glm_agent.exceptions import MissingDependencyError, UserError
from glm_agent.retrieval.milvus_filter import encode_terms

__all__ = ["MilvusIndex", "connect_milvus"]

Terms = Literal["glm-agent", "jieba"]
_VARCHAR_MAX = 65_535
_INDEX_TYPES = ("AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT")
# What `get` returns for a row (the vectors stay in Milvus).
ROW_FIELDS = [
    "id", "source", "position", "title", "page", "headings", "text", "metadata", "file_hash",
]  # fmt: skip


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as e:
        raise MissingDependencyError("pymilvus", "milvus", "a Milvus knowledge base") from e
    return pymilvus


def connect_milvus(uri: str, *, token: str | None = None) -> Any:
    """A `pymilvus.MilvusClient` for `uri`: a `.db` path (Milvus Lite, in this process) or a
    server's `http(s)://host:port`.

    Raises:
        UserError: Milvus Lite's folder is held by another process, or the server is unreachable.
    """
    pymilvus = _pymilvus()
    local = not uri.startswith(("http://", "https://", "tcp://", "unix:"))
    # Milvus Lite answers iterators without a snapshot timestamp, and pymilvus logs a warning on
    # every one; the iterator is right all the same (the collections are Strong)
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    if local:
        if not uri.endswith(".db"):
            raise UserError(
                f"Milvus URI {uri!r} must be http(s)://host:port (a server) or a path ending in "
                "'.db' (Milvus Lite)"
            )
        try:
            import milvus_lite  # noqa: F401
        except ImportError as e:
            raise MissingDependencyError("milvus-lite", "milvus", "a local Milvus Lite") from e
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return pymilvus.MilvusClient(uri=uri, token=token or "")
    except Exception as e:
        if local:
            hint = ""
            if Path(uri).exists():  # there but not openable: most often held by another process
                hint = (
                    ". Milvus Lite serves one process: for several, run `milvus-lite server "
                    f"--data-dir {uri} --port 19530` and give them uri http://127.0.0.1:19530"
                )
            raise UserError(f"cannot open Milvus Lite at {uri!r}: {e}{hint}") from e
        raise UserError(f"cannot connect to Milvus at {uri!r}: {e}") from e


def open_or_create(client: Any, name: str, create: Callable[[], None]) -> bool:
    """Create collection `name` with `create`, or load it if it exists; True when created.

    Several processes starting at once (server replicas, parallel ingests) may all find it
    missing: the ones whose create fails because another created it first load that one.
    """
    if not client.has_collection(name):
        try:
            create()
            return True
        except Exception:
            if not client.has_collection(name):
                raise
    client.load_collection(name)
    return False


class MilvusIndex:
    """Inner-product vectors and BM25 terms under int64 ids, in one Milvus collection.

    Args:
        uri: A `.db` path (Milvus Lite) or `http(s)://host:port` (a Milvus server or cluster).
        d: Vector dimension.
        collection: The collection's name (created if missing).
        token: Credentials for a server (`user:password` or an API key).
        index_type: The vector index Milvus builds: AUTOINDEX (Milvus' choice), FLAT, HNSW or
            IVF_FLAT.
        terms: Whose BM25 terms the lexical side indexes: "glm-agent" (ours, in base32) or
            "jieba" (Milvus' jieba analyzer over the raw text).
        client: A `MilvusClient` to use instead of connecting to `uri`.
    """

    def __init__(
        self,
        uri: str,
        d: int,
        *,
        collection: str = "glm_agent",
        token: str | None = None,
        index_type: str = "AUTOINDEX",
        terms: Terms = "glm-agent",
        client: Any = None,
    ) -> None:
        if index_type.upper() not in _INDEX_TYPES:
            raise UserError(
                f"unknown Milvus index type {index_type!r}; valid: {', '.join(_INDEX_TYPES)}"
            )
        if terms not in ("glm-agent", "jieba"):
            raise UserError(f"unknown BM25 terms {terms!r}; valid: glm-agent, jieba")
        self.uri, self.d, self.collection, self.terms = uri, d, collection, terms
        self.index_type = index_type.upper()
        self._client = client if client is not None else connect_milvus(uri, token=token)
        self._lock = threading.Lock()
        if not open_or_create(self._client, collection, self._create):
            self._check_dim()

    @property
    def client(self) -> Any:
        """The `pymilvus.MilvusClient`."""
        return self._client

    def _create(self) -> None:
        pymilvus = _pymilvus()
        DataType, Function, FunctionType = (
            pymilvus.DataType,
            pymilvus.Function,
            pymilvus.FunctionType,
        )
        s = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=self.d)
        analyzer = (
            {"tokenizer": "standard"} if self.terms == "glm-agent" else {"tokenizer": "jieba"}
        )
        s.add_field(
            "terms",
            DataType.VARCHAR,
            max_length=_VARCHAR_MAX,
            enable_analyzer=True,
            analyzer_params=analyzer,
        )
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("source", DataType.VARCHAR, max_length=4096)
        s.add_field("tenant", DataType.VARCHAR, max_length=512, nullable=True)
        s.add_field("file_hash", DataType.VARCHAR, max_length=128)
        s.add_field("position", DataType.INT64)
        s.add_field("title", DataType.VARCHAR, max_length=4096)
        s.add_field("page", DataType.INT64, nullable=True)
        s.add_field("headings", DataType.JSON)
        s.add_field("text", DataType.VARCHAR, max_length=_VARCHAR_MAX)
        s.add_field("metadata", DataType.JSON)
        s.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        ip = self._client.prepare_index_params()
        ip.add_index("vector", index_type=self.index_type, metric_type="IP")
        ip.add_index(
            "sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": 1.2, "bm25_b": 0.75},
        )
        ip.add_index("source", index_type="INVERTED")
        self._client.create_collection(
            self.collection, schema=s, index_params=ip, consistency_level="Strong"
        )

    def _check_dim(self) -> None:
        info = self._client.describe_collection(self.collection)
        for f in info.get("fields", []):
            if f.get("name") == "vector":
                dim = int(f.get("params", {}).get("dim", self.d))
                if dim != self.d:
                    raise UserError(
                        f"Milvus collection {self.collection!r} holds {dim}-d vectors, not "
                        f"{self.d}-d; use the embedder it was built with or another collection"
                    )

    # --- mutation ---------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Rows in the collection."""
        res = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def ids(self) -> npt.NDArray[np.int64]:
        """The ids of every row."""
        it = self._client.query_iterator(
            self.collection, batch_size=1000, filter="", output_fields=["id"]
        )
        out: list[int] = []
        try:
            while batch := it.next():
                out += [int(r["id"]) for r in batch]
        finally:
            it.close()
        return np.array(sorted(out), dtype=np.int64)

    def _rows(
        self, xb: npt.ArrayLike, ids: npt.ArrayLike, rows: Sequence[Mapping[str, Any]] | None
    ) -> list[dict[str, Any]]:
        x = np.ascontiguousarray(np.asarray(xb, dtype=np.float32)).reshape(-1, self.d)
        i = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(x) != len(i) or (rows is not None and len(rows) != len(i)):
            raise UserError(f"{len(x)} vectors, {len(i)} ids and {len(rows or i)} rows differ")
        out = []
        for n in range(len(i)):
            r = dict(rows[n]) if rows is not None else {}
            text = str(r.get("text", ""))
            terms = r.pop("terms", None)
            row = {
                "id": int(i[n]),
                "vector": x[n].tolist(),
                "terms": terms if terms is not None else "",
                "source": str(r.get("source", "")),
                "tenant": r.get("tenant"),
                "file_hash": str(r.get("file_hash", "")),
                "position": int(r.get("position", 0)),
                "title": str(r.get("title", "")),
                "page": r.get("page"),
                "headings": list(r.get("headings", [])),
                "text": text,
                "metadata": dict(r.get("metadata", {})),
            }
            for key in ("terms", "text"):
                if len(row[key].encode()) > _VARCHAR_MAX:
                    raise UserError(
                        f"chunk {row['source']}#{row['position']} has {len(row[key].encode())} "
                        f"bytes of {key}, over Milvus' {_VARCHAR_MAX}; use a smaller chunk_size"
                    )
            out.append(row)
        return out

    def add(
        self,
        xb: npt.ArrayLike,
        ids: npt.ArrayLike,
        rows: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Add vectors `xb` under `ids` with their rows' fields (`upsert` replaces)."""
        data = self._rows(xb, ids, rows)
        for s in range(0, len(data), 1000):
            self._client.insert(self.collection, data[s : s + 1000])

    def upsert(
        self,
        xb: npt.ArrayLike,
        ids: npt.ArrayLike,
        rows: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Add vectors under `ids`, replacing any rows already stored under them."""
        data = self._rows(xb, ids, rows)
        for s in range(0, len(data), 1000):
            self._client.upsert(self.collection, data[s : s + 1000])

    def delete(self, ids: npt.ArrayLike) -> int:
        """Remove the rows under `ids`; returns how many were asked for."""
        i = [int(x) for x in np.asarray(ids, dtype=np.int64).reshape(-1)]
        for s in range(0, len(i), 1000):
            self._client.delete(self.collection, ids=i[s : s + 1000])
        return len(i)

    def delete_where(self, expr: str) -> None:
        """Remove the rows matching a Milvus boolean expression."""
        self._client.delete(self.collection, filter=expr)

    # --- search -----------------------------------------------------------------------------

    def _results(self, res: Any, k: int, *, bm25: bool) -> tuple[Any, Any]:
        D = np.full((len(res), k), -np.inf, dtype=np.float32)
        I = np.full((len(res), k), -1, dtype=np.int64)  # noqa: E741
        for q, hits in enumerate(res):
            for j, h in enumerate(list(hits)[:k]):
                # Milvus Lite 3 negates BM25 scores (it ranks by distance); servers return them
                # as they are; both are >= 0 before that, and both come best first
                score = float(h["distance"])
                D[q, j] = abs(score) if bm25 else score
                I[q, j] = int(h["id"])
        return D, I

    def search(
        self,
        xq: npt.ArrayLike,
        k: int,
        *,
        allowed: npt.ArrayLike | None = None,
        filter: str = "",
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The `k` best ids for each query: `D` (inner products) and `I` (-1 past the results).

        Args:
            xq: Queries, `[nq, d]`.
            k: Results per query.
            allowed: If given, only these ids may be returned.
            filter: A Milvus boolean expression rows must match (see `milvus_filter`).
        """
        q = np.asarray(xq, dtype=np.float32).reshape(-1, self.d)
        expr = _and(filter, allowed)
        res = self._client.search(
            self.collection,
            data=q.tolist(),
            anns_field="vector",
            limit=k,
            filter=expr,
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        return self._results(res, k, bm25=False)

    def search_terms(
        self,
        terms: Sequence[str],
        k: int,
        *,
        filter: str = "",
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """BM25 over the rows' terms: 1-D `D` (scores > 0) and `I`, best first.

        Args:
            terms: The query's terms (`lexical.tokenize`), or `[query]` with terms="jieba".
            k: Results.
            filter: A Milvus boolean expression rows must match.
        """
        text = encode_terms(terms) if self.terms == "glm-agent" else " ".join(terms)
        if not text.strip():
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        res = self._client.search(
            self.collection,
            data=[text],
            anns_field="sparse",
            limit=k,
            filter=filter,
            output_fields=["id"],
            search_params={"metric_type": "BM25"},
        )
        D, I = self._results(res, k, bm25=True)  # noqa: E741
        keep = (I[0] >= 0) & (D[0] > 0)
        return D[0][keep], I[0][keep]

    def get(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The stored fields of the rows under `ids` (those that exist), without vectors."""
        if not ids:
            return []
        return list(
            self._client.get(self.collection, ids=[int(i) for i in ids], output_fields=ROW_FIELDS)
        )

    def query(self, expr: str, fields: Sequence[str], *, limit: int | None = None) -> list[Any]:
        """Rows matching `expr` (their `fields`), all of them when no limit."""
        it = self._client.query_iterator(
            self.collection, batch_size=1000, filter=expr, output_fields=list(fields)
        )
        out: list[Any] = []
        try:
            while batch := it.next():
                out += batch
                if limit is not None and len(out) >= limit:
                    return out[:limit]
        finally:
            it.close()
        return out

    def drop(self) -> None:
        """Delete the collection."""
        self._client.drop_collection(self.collection)


def _and(expr: str, allowed: npt.ArrayLike | None) -> str:
    if allowed is None:
        return expr
    ids = ", ".join(str(int(i)) for i in np.asarray(allowed, dtype=np.int64).reshape(-1))
    clause = f"id in [{ids}]"
    return f"({expr}) and {clause}" if expr else clause
