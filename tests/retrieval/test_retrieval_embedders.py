"""Embedders: hashed test vectors, the cache, the offline MiniLM, an OpenAI-style endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from glm_agent.exceptions import ModelHTTPError
from glm_agent.retrieval import (
    CachedEmbedder,
    KnowledgeBase,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    TestEmbedder,
    default_model_path,
    resolve_embedder,
)


def test_test_embedder_is_deterministic_normalised_and_similarity_aware() -> None:
    e = TestEmbedder(128)
    x = e.embed(["refund my order", "refund my orders please", "the weather is sunny", "退款申请"])
    assert x.shape == (4, 128) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(x, TestEmbedder(128).embed(
        ["refund my order", "refund my orders please", "the weather is sunny", "退款申请"]
    ))  # fmt: skip
    assert x[0] @ x[1] > 0.5 > x[0] @ x[2]
    assert float(e.embed(["申请退款"])[0] @ x[3]) > 0.3


def test_cache_embeds_each_text_once(tmp_path: Path) -> None:
    calls: list[int] = []

    class Counting(TestEmbedder):
        def embed(self, texts: Any) -> Any:
            calls.append(len(texts))
            return super().embed(texts)

    c = CachedEmbedder(Counting(64), tmp_path / "cache.sqlite", batch_size=2)
    a = c.embed(["x", "y", "z", "x"])
    assert calls == [2, 1] and c.misses == 3 and c.hits == 1
    c.close()
    c2 = CachedEmbedder(Counting(64), tmp_path / "cache.sqlite")
    np.testing.assert_array_equal(c2.embed(["z", "y"]), a[[2, 1]])
    assert calls == [2, 1] and c2.hits == 2
    c2.close()


def test_real_minilm_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert (Path(default_model_path()) / "config.json").exists()
    e = resolve_embedder("minilm")
    assert isinstance(e, SentenceTransformerEmbedder) and e.dim == 384
    x = e.embed(["How do I get my money back?", "Refund request procedure", "Penguins live in ice"])
    assert x[0] @ x[1] > x[0] @ x[2] + 0.1
    kb = KnowledgeBase(tmp_path / "kb", embedder=e)
    kb.add_documents(
        [
            {"id": "refunds", "text": "To request a refund, return the item within 30 days."},
            {"id": "shipping", "text": "Parcels are delivered by courier in three days."},
        ]
    )
    assert kb.search("I want my money back", k=1, mode="dense")[0].citation.source == "refunds"


def wsgi_embeddings(
    status: str = "200 OK",
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """An OpenAI-compatible /v1/embeddings endpoint serving TestEmbedder vectors, unnormalised."""
    inner = TestEmbedder(32)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        assert environ["PATH_INFO"] == "/v1/embeddings"
        assert environ.get("HTTP_AUTHORIZATION") == "Bearer k"
        vecs = inner.embed(body["input"]) * 3.0
        data = [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)][::-1]
        out = json.dumps({"data": data, "model": body["model"]}).encode()
        if status != "200 OK":
            out = b'{"error": "overloaded"}'
        start_response(status, [("Content-Type", "application/json")])
        return [out]

    return app


def test_openai_compatible_endpoint() -> None:
    client = httpx.Client(transport=httpx.WSGITransport(app=wsgi_embeddings()))
    e = OpenAIEmbedder(
        "embedding-3", base_url="http://test/v1", api_key="k", batch_size=2, client=client
    )
    assert e.dim == 32 and e.name == "openai:embedding-3"
    texts = ["a refund", "shipping time", "a refund!"]
    x = e.embed(texts)
    np.testing.assert_allclose(x, TestEmbedder(32).embed(texts), rtol=1e-5, atol=1e-6)
    bad = httpx.Client(transport=httpx.WSGITransport(app=wsgi_embeddings("503 Busy")))
    with pytest.raises(ModelHTTPError, match="503"):
        OpenAIEmbedder("m", base_url="http://test/v1", api_key="k", dim=32, client=bad).embed(["x"])
