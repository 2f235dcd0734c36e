"""OCR of scanned pages and photos (the `ocr` extra, models inside the wheel): images and PDF
pages without a text layer are read, keep their page numbers, and are found by search."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from glm_agent.retrieval import KnowledgeBase, read_document

pytest.importorskip("rapidocr_onnxruntime")
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
LINES = [
    "退货政策：商品签收后七天内可以无理由退货。",
    "运费：新疆、西藏地区每单运费二十元。",
    "Refunds are paid within five business days.",
    "Express shipping to Xinjiang costs 20 yuan per order.",
]


@pytest.fixture(scope="module", autouse=True)
def cjk_font() -> None:
    if not FONT.exists():
        reason = f"{FONT} missing (scripts/setup installs fonts-wqy-microhei)"
        if os.environ.get("GLM_AGENT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and GLM_AGENT_REQUIRE_SERVICES=1")
        pytest.skip(reason)


def render(kind: str) -> object:
    """LINES as a scan (rotated 1.5°, noise, blur) or a photo (4°, skew, uneven light, noise)."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(str(FONT), 30)
    img = Image.new("L", (1100, 70 * len(LINES) + 80), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(LINES):
        draw.text((50, 40 + 70 * i), line, font=font, fill=20)
    angle, sigma, blur = (1.5, 18, 0.5) if kind == "scan" else (4.0, 28, 0.9)
    img = img.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    w, h = img.size
    if kind == "photo":
        # the top edge pulled in, as from a phone held at a slight angle
        img = img.transform(
            (w, h), Image.Transform.QUAD, (30, 10, 0, h - 5, w, h, w - 25, 0), fillcolor=255
        )
        light = np.linspace(0.75, 1.0, w)[None, :] * np.linspace(0.9, 1.0, h)[:, None]
        img = Image.fromarray((np.asarray(img, dtype=np.float32) * light).astype(np.uint8))
    noisy = np.asarray(img, dtype=np.float32) + np.random.default_rng(0).normal(0, sigma, (h, w))
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(blur)).convert("RGB")


def accuracy(reference: str, text: str) -> float:
    """1 - edit distance / reference length, whitespace removed."""
    a, b = "".join(reference.split()), "".join(text.split())
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1 - prev[-1] / len(a)


def by_language(text: str) -> tuple[float, float]:
    zh = "\n".join(LINES[:2])
    en = "\n".join(LINES[2:])
    cut = text.find("Refunds")
    return accuracy(zh, text[:cut]), accuracy(en, text[cut:])


def test_a_scanned_page_and_a_photo_are_read(tmp_path: Path) -> None:
    render("scan").save(tmp_path / "scan.png")  # type: ignore[attr-defined]
    render("photo").save(tmp_path / "photo.jpg", quality=60)  # type: ignore[attr-defined]
    for name, floor in (("scan.png", 0.95), ("photo.jpg", 0.9)):
        doc = read_document(tmp_path / name)
        text = "\n".join(s.text for s in doc.sections)
        zh, en = by_language(text)
        assert zh >= floor and en >= floor, (name, zh, en, text)
        assert doc.notes == ["read by OCR (1 page)"]
    # English words run together by the recogniser are split back
    assert "within five business days" in text


def test_pdf_pages_without_text_are_read_by_ocr_with_their_page(tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    scan = render("scan")
    c = canvas.Canvas(str(tmp_path / "policy.pdf"), pagesize=A4)
    c.setTitle("Policy")
    c.drawString(72, 760, "Page one has a text layer about warranty terms.")
    c.showPage()
    c.drawImage(ImageReader(scan), 30, 400, width=540, height=540 * scan.size[1] / scan.size[0])  # type: ignore[attr-defined]
    c.showPage()
    c.save()
    kb = KnowledgeBase(tmp_path / "kb", embedder="test")
    report = kb.ingest(tmp_path / "policy.pdf")
    assert report.warnings == [f"{(tmp_path / 'policy.pdf').resolve()}: read by OCR: page 2"]
    hits = kb.search("新疆运费多少 warranty terms", k=5, per_document=None)
    pages = {h.citation.page: h.text for h in hits}
    assert pages[1] == "Page one has a text layer about warranty terms."
    assert min(by_language(pages[2])) >= 0.95, pages[2]
    assert kb.search("新疆运费多少", k=1)[0].citation.page == 2
