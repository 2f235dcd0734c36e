"""Finding 8 (low): a 206 KB DOCX holding 50 MB of XML took 190 s of CPU (and went on after the
client disconnected). A zip-based document is now measured before any parser opens it: declared
sizes, packing ratio, and what its XML really inflates to."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import httpx
import pytest
from serving_harness import live_server, support_turn

from glm_agent import Agent
from glm_agent.models import FunctionModel
from glm_agent.retrieval import KnowledgeBase, TestEmbedder
from glm_agent.retrieval import loaders as loaders_module
from glm_agent.retrieval.loaders import DocumentLoadError, load_file
from glm_agent.serving import ApiKey, ServedAgent, ServerConfig, create_app, generate_key, hash_key

docx = pytest.importorskip("docx", reason="python-docx (glm-agent[retrieval]) is not installed")

KEY = generate_key()


def real_docx(text: str = "Refunds are accepted within 30 days.") -> bytes:
    document = docx.Document()
    document.add_heading("Returns", level=1)
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def bomb(xml_megabytes: int = 50) -> bytes:
    """A valid DOCX whose document.xml carries `xml_megabytes` of padding: tiny when packed."""
    source = zipfile.ZipFile(io.BytesIO(real_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as packed:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                pad = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * (xml_megabytes * 1024 * 1024 // 34)
                data = data.replace(b"</w:body>", pad + b"</w:body>")
            packed.writestr(info.filename, data)
    return out.getvalue()


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths python-docx was asked to parse."""
    seen: list[str] = []
    real = docx.Document

    def spy(path: str | None = None) -> object:
        if path is not None:
            seen.append(path)
        return real(path)

    monkeypatch.setattr(docx, "Document", spy)
    return seen


def test_a_docx_bomb_is_refused_before_it_is_parsed(tmp_path: Path, parsed: list[str]) -> None:
    path = tmp_path / "bomb.docx"
    path.write_bytes(bomb())
    assert path.stat().st_size < 400_000
    with pytest.raises(DocumentLoadError, match="zip bomb"):
        load_file(path)
    assert parsed == []


def test_a_real_docx_with_a_large_picture_still_loads(tmp_path: Path, parsed: list[str]) -> None:
    source = zipfile.ZipFile(io.BytesIO(real_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in source.infolist():
            packed.writestr(info.filename, source.read(info))
        # Incompressible media: big, but not XML and not a bomb.
        packed.writestr("word/media/photo.jpeg", __import__("os").urandom(40 * 1024 * 1024))
    path = tmp_path / "manual.docx"
    path.write_bytes(out.getvalue())
    _, sections = load_file(path)
    assert "30 days" in " ".join(s.text for s in sections) and parsed == [str(path)]


def test_too_much_xml_is_refused_whatever_the_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loaders_module, "MAX_XML_BYTES", 2 * 1024 * 1024)
    words = " ".join(f"word{random.randrange(10**6)}" for _ in range(400_000))  # ~4.8 MB
    path = tmp_path / "long.docx"
    path.write_bytes(real_docx(words))
    with pytest.raises(DocumentLoadError, match="its XML unpacks to more than 2 MB"):
        load_file(path)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocumentLoadError, match="not a zip archive"):
        load_file(path)


def test_an_uploaded_bomb_is_reported_and_the_server_goes_on(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb", embedder=TestEmbedder(dim=64))
    agent: Agent[str] = Agent(FunctionModel(support_turn), name="helpdesk", knowledge=kb)
    keys = [ApiKey(hash=hash_key(KEY), tenant="acme", scopes=["knowledge"])]
    app = create_app(
        [ServedAgent(agent, data_dir=tmp_path / "data")], config=ServerConfig(keys=keys)
    )
    auth = {"Authorization": f"Bearer {KEY}"}
    with live_server(app) as url:
        files = [
            ("files", ("bomb.docx", bomb(), "application/octet-stream")),
            ("files", ("returns.docx", real_docx(), "application/octet-stream")),
        ]
        r = httpx.post(
            url + "/v1/agents/helpdesk/knowledge/documents", files=files, headers=auth, timeout=60
        )
        assert r.status_code == 200, r.text
        report = r.json()["report"]
        assert report["added"] == ["returns.docx"]
        assert "zip bomb" in str(report["failed"])
        assert httpx.get(url + "/healthz").status_code == 200
        hits = httpx.post(
            url + "/v1/agents/helpdesk/knowledge/search",
            json={"query": "refund days", "k": 3},
            headers=auth,
        ).json()["data"]
        assert [h["citation"]["source"] for h in hits] == ["returns.docx"]
