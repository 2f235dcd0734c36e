"""Knowledge routes (upload, re-index, search) scoped by tenant, and /v1/embeddings."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from serving_harness import live_server, support_turn

from glm_agent import Agent
from glm_agent.models import FunctionModel
from glm_agent.retrieval import KnowledgeBase, TestEmbedder
from glm_agent.serving import (
    ApiKey,
    ServedAgent,
    ServerConfig,
    create_app,
    generate_key,
    hash_key,
)

ACME, GLOBEX, CHAT_ONLY = generate_key(), generate_key(), generate_key()


@pytest.fixture
def kb_server(tmp_path: Path) -> Iterator[str]:
    kb = KnowledgeBase(tmp_path / "kb", embedder=TestEmbedder(dim=64))
    agent: Agent[str] = Agent(FunctionModel(support_turn), name="helpdesk", knowledge=kb)
    keys = [
        ApiKey(hash=hash_key(ACME), tenant="acme", scopes=["chat", "knowledge"]),
        ApiKey(hash=hash_key(GLOBEX), tenant="globex", scopes=["knowledge", "chat"]),
        ApiKey(hash=hash_key(CHAT_ONLY), tenant="acme", scopes=["chat"]),
    ]
    served = ServedAgent(agent, data_dir=tmp_path / "data")
    app = create_app([served], config=ServerConfig(keys=keys))
    with live_server(app) as url:
        yield url


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_uploads_are_searchable_only_by_their_tenant(kb_server: str) -> None:
    base = kb_server + "/v1/agents/helpdesk/knowledge"
    doc = "# Returns\n\nRefunds are accepted within 30 days of delivery for unused items.\n"
    r = httpx.post(
        base + "/documents",
        files=[("files", ("../../returns policy.md", doc.encode(), "text/markdown"))],
        headers=_auth(ACME),
    )
    assert r.status_code == 200, r.text
    assert r.json()["documents"] == ["returns_policy.md"]
    assert r.json()["report"]["added"] == ["returns_policy.md"]
    query = {"query": "refund within how many days?", "k": 3}
    hits = httpx.post(base + "/search", json=query, headers=_auth(ACME)).json()["data"]
    assert hits and "30 days" in hits[0]["text"]
    assert hits[0]["citation"]["source"] == "returns_policy.md"
    assert "tenant" not in hits[0]["metadata"]
    other = httpx.post(base + "/search", json=query, headers=_auth(GLOBEX)).json()["data"]
    assert other == []
    denied = httpx.post(base + "/search", json=query, headers=_auth(CHAT_ONLY))
    assert denied.status_code == 403
    again = httpx.post(base + "/reindex", headers=_auth(ACME)).json()
    assert again["report"]["skipped"] == 1 and again["stats"]["documents"] == 1
    assert "path" not in again["stats"]


def test_embeddings_use_the_knowledge_base_embedder(kb_server: str) -> None:
    c = openai.OpenAI(base_url=kb_server + "/v1", api_key=ACME, max_retries=0)
    r = c.embeddings.create(model="helpdesk", input=["refund policy", "退货政策"])
    expected = TestEmbedder(dim=64).embed(["refund policy", "退货政策"])
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert got.shape == (2, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # base64 of little-endian float32, as OpenAI sends it.
    b64 = c.embeddings.create(model="helpdesk", input="refund policy", encoding_format="base64")
    raw = base64.b64decode(str(b64.data[0].embedding))
    np.testing.assert_allclose(np.frombuffer(raw, dtype="<f4"), expected[0], rtol=1e-6)
