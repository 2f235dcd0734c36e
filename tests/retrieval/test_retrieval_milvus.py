"""The Milvus backend for real: Milvus Lite in this process, and a Milvus Lite server on 127.0.0.1
shared by several processes (two ingests of one folder, two `glm-agent serve` replicas)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from glm_agent.exceptions import UserError
from glm_agent.retrieval import FaissIndex, KnowledgeBase, MilvusIndex, milvus_filter

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def lite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Milvus Lite folder for the module (each test uses its own collection)."""
    return str(tmp_path_factory.mktemp("milvus") / "kb.db")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus Lite gRPC server in its own process: what a Milvus server is to replicas."""
    data = tmp_path_factory.mktemp("milvus-server") / "server.db"
    port = _free_port()
    with (data.parent / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "milvus-lite"), "server", "--data-dir", str(data), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (
                data.parent / "server.log"
            ).read_text()
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def test_milvus_index_matches_faiss_and_filters_in_the_engine(lite_uri: str) -> None:
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((300, 16)).astype(np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xb[:5] + 0.05 * rng.standard_normal((5, 16)).astype(np.float32)
    ids = np.arange(1000, 1300, dtype=np.int64)
    rows = [{"source": f"doc{i % 10}", "tenant": ["acme", None][i % 2]} for i in range(300)]
    m = MilvusIndex(lite_uri, 16, collection="index_check", index_type="FLAT")
    m.add(xb, ids, rows)
    f = FaissIndex(16, kind="flat")
    f.add(xb, ids)
    assert m.ntotal == 300 and m.ids().tolist() == ids.tolist()
    D, I = m.search(xq, 10)  # noqa: E741
    D_f, I_f = f.search(xq, 10)
    np.testing.assert_array_equal(I, I_f)
    np.testing.assert_allclose(D, D_f, rtol=1e-4, atol=1e-5)
    # the filter narrows what Milvus searches, before the top k: k=3 still gives 3 of acme's
    D, I = m.search(xq[:1], 3, filter=milvus_filter({"tenant": "acme"}))  # noqa: E741
    assert len(I[0]) == 3 and all((i - 1000) % 2 == 0 for i in I[0])
    m.upsert(xb[:1] * -1, ids[:1], rows[:1])  # replaced in place: same id, opposite vector
    assert m.ntotal == 300 and m.search(xb[:1], 1)[1][0, 0] != 1000
    assert m.delete(ids[:100]) == 100 and m.ntotal == 200
    assert m.search(xb[:1], 300, allowed=[1000, 1001, 1200])[1][0].tolist()[:1] == [1200]
    with pytest.raises(UserError, match="holds 16-d vectors, not 32-d"):
        MilvusIndex(lite_uri, 32, collection="index_check")


def test_milvus_filter_expressions() -> None:
    assert milvus_filter({"tenant": ["acme", None]}) == '(tenant in ["acme"] or tenant is null)'
    expr = milvus_filter({"tags": ['a"b'], "source": "x"})
    assert expr == (
        '(metadata["tags"] == "a\\"b" or json_contains_any(metadata["tags"], ["a\\"b"]))'
        ' and (source in ["x"])'
    )


def test_knowledge_base_on_milvus(work_docs: Path, tmp_path: Path, lite_uri: str) -> None:
    opts = {"backend": "milvus", "uri": lite_uri, "collection": "kb_e2e"}
    kb = KnowledgeBase(tmp_path / "cache", embedder="test", **opts)
    first = kb.ingest(work_docs / "manuals", tenant="acme", tags=["hardware"])
    kb.ingest(work_docs / "refund.md", tenant="globex")
    kb.ingest(work_docs / "hours.txt")  # shared: no tenant
    assert len(first.added) == 2 and first.chunks_added >= 2
    hit = kb.search("How long does the warranty last?", k=1)[0]
    assert hit.citation.source.endswith("warranty.pdf") and hit.citation.page == 1
    assert hit.citation.title == "Warranty Terms"
    q = "warranty refund battery support hours"
    own = kb.search(q, k=10, filters={"tenant": ["globex", None]})
    assert {h.metadata.get("tenant") for h in own} == {"globex", None}
    assert all(
        h.metadata["tenant"] == "acme" for h in kb.search(q, k=10, filters={"tags": "hardware"})
    )
    assert kb.search(q, k=10, filters={"tenant": "nobody"}) == []
    # incremental: unchanged skipped, changed re-chunked without leftovers, deleted removed
    (work_docs / "hours.txt").write_text("Support is open every day from 8am to 8pm.")
    again = kb.ingest(work_docs / "hours.txt")
    assert [Path(p).name for p in again.updated] == ["hours.txt"]
    assert all("Monday" not in h.text for h in kb.search("support open Monday", k=10))
    before = kb.stats()["chunks"]
    (work_docs / "manuals" / "security.docx").unlink()
    gone = kb.ingest(work_docs / "manuals", tenant="acme", tags=["hardware"])
    assert [Path(p).name for p in gone.removed] == ["security.docx"] and len(gone.skipped) == 1
    assert kb.stats()["chunks"] < before and kb.stats()["backend"] == "milvus"
    kb.close()
    with KnowledgeBase(tmp_path / "other-cache", **opts) as reopened:  # embedder from Milvus
        assert reopened.embedder.name == "test:256"
        assert reopened.search("8am to 8pm", k=1)[0].text.startswith("Support is open")
        assert {Path(s).name for s in reopened.file_hashes()} == {
            "warranty.pdf",
            "refund.md",
            "hours.txt",
        }


@pytest.fixture
def work_docs(docs_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "docs"
    shutil.copytree(docs_dir, dst)
    (dst / "broken.pdf").unlink()
    return dst


def _rows(uri: str, collection: str) -> list[tuple[str, int]]:
    index = MilvusIndex(uri, 256, collection=collection)
    rows = index.query("", ["source", "position"])
    index.client.close()
    return [(r["source"], int(r["position"])) for r in rows]


@pytest.mark.slow
def test_two_processes_ingesting_one_folder_do_not_duplicate(
    work_docs: Path, tmp_path: Path, milvus_server: str
) -> None:
    def ingest(collection: str, cache: str) -> subprocess.Popen[bytes]:
        args = [str(work_docs), "--kb", str(tmp_path / cache), "--embedder", "test"]
        args += ["--backend", "milvus", "--uri", milvus_server, "--collection", collection]
        return subprocess.Popen(
            [str(BIN / "glm-agent"), "kb", "ingest", *args, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    alone = ingest("one_writer", "c0")
    out, _ = alone.communicate(timeout=120)
    assert alone.returncode == 0, out.decode()
    expected = sorted(_rows(milvus_server, "one_writer"))
    both = [ingest("two_writers", "c1"), ingest("two_writers", "c2")]
    for p in both:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out.decode()
    rows = _rows(milvus_server, "two_writers")
    assert len(rows) == len(set(rows)) and sorted(rows) == expected and len(expected) > 8


@pytest.mark.slow
def test_an_upload_through_one_replica_is_found_through_the_other(
    tmp_path: Path, milvus_server: str
) -> None:
    urls, procs = [], []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "agent.yaml").write_text(
            "name: helpdesk\nmodel: test\nmemory: none\n"
            f"knowledge: {{backend: milvus, uri: '{milvus_server}', collection: replicas, "
            "embedder: test}\n",
            encoding="utf-8",
        )
        port = _free_port()
        with (folder / "server.log").open("w") as log:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "glm-agent"), "serve", "agent.yaml", "--port", str(port)],
                    cwd=folder,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, proc, name in zip(urls, procs, "ab", strict=True):
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(url + "/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, (
                    tmp_path / name / "server.log"
                ).read_text()
                time.sleep(0.2)
        doc = "# Shipping\n\nShipping to Xinjiang costs 20 yuan and takes seven days.\n"
        r = httpx.post(
            urls[0] + "/v1/agents/helpdesk/knowledge/documents",
            files=[("files", ("shipping.md", doc.encode(), "text/markdown"))],
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["report"]["added"] == ["shipping.md"], r.text
        query = {"query": "how much is shipping to Xinjiang", "k": 3}
        hits = httpx.post(
            urls[1] + "/v1/agents/helpdesk/knowledge/search", json=query, timeout=60
        ).json()["data"]
        assert hits and "20 yuan" in hits[0]["text"]
        assert hits[0]["citation"]["source"] == "shipping.md"
        # the same name uploaded again through the other replica replaces the document
        doc2 = doc.replace("20 yuan", "25 yuan")
        r = httpx.post(
            urls[1] + "/v1/agents/helpdesk/knowledge/documents",
            files=[("files", ("shipping.md", doc2.encode(), "text/markdown"))],
            timeout=60,
        )
        assert r.json()["report"]["updated"] == ["shipping.md"], r.text
        hits = httpx.post(
            urls[0] + "/v1/agents/helpdesk/knowledge/search", json=query, timeout=60
        ).json()["data"]
        assert [h["text"].count("25 yuan") for h in hits] == [1]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


def test_agent_yaml_knowledge_on_milvus(tmp_path: Path) -> None:
    from glm_agent.agent_config import load_agent
    from glm_agent.exceptions import ConfigError

    (tmp_path / "agent.yaml").write_text(
        "name: helpdesk\nmodel: test\nmemory: none\n"
        "knowledge: {backend: milvus, uri: data/kb.db, collection: yaml_kb, embedder: test,"
        " per_document: 2, mode: context}\n",
        encoding="utf-8",
    )
    agent = load_agent(tmp_path / "agent.yaml")
    kb = agent.knowledge
    assert isinstance(kb, KnowledgeBase) and kb.backend == "milvus" and kb.per_document == 2
    assert agent.knowledge_mode == "context"
    assert (tmp_path / "data" / "kb.db").exists()  # the Lite folder, relative to the yaml
    assert kb.path == (tmp_path / ".glm-agent" / "knowledge-cache").resolve()
    (tmp_path / "bad.yaml").write_text("model: test\nknowledge:\n  backend: milvus\n")
    with pytest.raises(ConfigError, match="backend milvus needs a uri") as e:
        load_agent(tmp_path / "bad.yaml")
    assert e.value.key == "knowledge.uri"
