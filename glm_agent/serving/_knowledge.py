"""Knowledge routes and embeddings: uploads, re-indexing and search, scoped to the key's tenant.

Uploaded documents are kept per tenant under the agent's data folder and ingested with the
tenant recorded on every chunk; searches filter on it, so a key only finds its own tenant's
documents. Their sources are recorded as `uploads/<tenant digest>/<file name>` rather than as
paths on this machine, so that with a shared knowledge base (Milvus) every replica addresses the
same document: an upload through one replica is found through all, and uploading the same name
again through another replaces it. A re-index on a shared knowledge base re-reads the files this
replica holds and removes none it does not hold.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import UploadFile

from glm_agent.serving._errors import HTTPProblem
from glm_agent.serving._schema import EmbeddingRequest, KnowledgeSearchRequest
from glm_agent.serving._state import ServedAgent, ServerState

__all__ = ["embed", "reindex", "search", "upload"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._\-]+")


def _kb(served: ServedAgent) -> Any:
    kb = served.agent.knowledge
    if kb is None:
        raise HTTPProblem(
            400,
            f"agent {served.name!r} has no knowledge base; configure `knowledge:` in its yaml",
            code="no_knowledge_base",
            param="model",
        )
    return kb


def _tenant_dir(served: ServedAgent, tenant: str) -> Path:
    # A digest keeps any tenant id a safe, fixed-length folder name.
    slug = hashlib.sha256(tenant.encode()).hexdigest()[:16]
    base = served.data_dir or Path(".glm-agent") / served.name
    return base / "uploads" / slug


def _source_root(tenant: str) -> str:
    return "uploads/" + hashlib.sha256(tenant.encode()).hexdigest()[:16]


async def _ingest(kb: Any, target: Path, tenant: str, *, prune: bool) -> dict[str, Any]:
    """Bring the tenant's documents in the knowledge base in line with `target` (its folder,
    or one uploaded file)."""
    import anyio

    call = functools.partial(
        kb.ingest, target, tenant=tenant, source_root=_source_root(tenant), prune=prune
    )
    report = await anyio.to_thread.run_sync(call)
    return {
        "added": [Path(p).name for p in report.added],
        "updated": [Path(p).name for p in report.updated],
        "removed": [Path(p).name for p in report.removed],
        "skipped": len(report.skipped),
        "failed": [{"file": Path(f.path).name, "error": f.reason} for f in report.failed],
        "empty": [Path(p).name for p in report.empty],
        "warnings": [w.split("/")[-1] for w in report.warnings],
        "chunks_added": report.chunks_added,
    }


def _stats(kb: Any) -> dict[str, Any]:
    stats = dict(kb.stats())
    for key in ("path", "uri", "collection"):
        stats.pop(key, None)  # where the server keeps things is none of the client's business
    return stats


async def upload(
    state: ServerState, served: ServedAgent, tenant: str, files: list[UploadFile]
) -> dict[str, Any]:
    """Save the files in the tenant's folder and ingest them tagged with the tenant."""
    kb = _kb(served)
    folder = _tenant_dir(served, tenant)
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []
    for f in files:
        name = _SAFE_NAME.sub("_", Path(f.filename or "document").name).strip("._") or "document"
        (folder / name).write_bytes(await f.read())
        saved.append(name)
    # each upload is ingested on its own: the tenant's other documents are left as they are
    reports = [await _ingest(kb, folder / name, tenant, prune=False) for name in saved]
    report: dict[str, Any] = {
        key: [x for r in reports for x in r[key]]
        for key in ("added", "updated", "removed", "failed", "empty", "warnings")
    }
    report["skipped"] = sum(r["skipped"] for r in reports)
    report["chunks_added"] = sum(r["chunks_added"] for r in reports)
    return {"object": "knowledge.upload", "documents": saved, "report": report}


async def reindex(served: ServedAgent, tenant: str) -> dict[str, Any]:
    """Re-ingest the tenant's uploaded documents (changed files are re-chunked)."""
    kb = _kb(served)
    folder = _tenant_dir(served, tenant)
    folder.mkdir(parents=True, exist_ok=True)
    shared = getattr(kb, "backend", "faiss") != "faiss"
    report = await _ingest(kb, folder, tenant, prune=not shared)
    return {"object": "knowledge.reindex", "report": report, "stats": _stats(kb)}


def _hit_json(hit: Any) -> dict[str, Any]:
    c = hit.citation
    return {
        "text": hit.text,
        "score": float(hit.score),
        "citation": {
            "source": Path(c.source).name,
            "title": c.title,
            "page": c.page,
            "heading_path": list(c.heading_path),
        },
        "metadata": {k: v for k, v in hit.metadata.items() if k != "tenant"},
    }


async def search(served: ServedAgent, tenant: str, body: KnowledgeSearchRequest) -> dict[str, Any]:
    """The tenant's passages that best match the query."""
    kb = _kb(served)
    hits = await kb.asearch(body.query, k=body.k, filters={"tenant": tenant})
    return {"object": "list", "data": [_hit_json(h) for h in hits]}


async def embed(state: ServerState, body: EmbeddingRequest) -> dict[str, Any]:
    """OpenAI embeddings from the knowledge base embedder of the agent `body.model`."""
    import numpy as np

    served = state.agent(body.model)
    kb = _kb(served)
    embedder = getattr(kb, "embedder", None)
    if embedder is None:
        raise HTTPProblem(400, "the knowledge base has no embedder", code="no_embedder")
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    import anyio

    raw = await anyio.to_thread.run_sync(embedder.embed, texts)
    vectors = np.asarray(raw, dtype="float32")
    data = []
    for i, v in enumerate(vectors):
        value: Any = (
            base64.b64encode(v.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else v.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(max(1, len(t) // 4) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
