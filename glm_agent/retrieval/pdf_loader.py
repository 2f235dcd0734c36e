"""PDF pages as sections: text, tables as Markdown, and OCR for pages without a text layer.

pdfplumber reads each page's characters and finds its tables: ruled ones from their drawn lines,
unruled ones from the alignment of their words (accepted only when they look like a table: three
rows or more, two columns or more, most cells filled). Text outside the tables is kept in reading
order around them. A page with no characters but with an image (a scan, a photo) is rendered by
pypdfium2 and read by OCR (`glm_agent.retrieval.ocr`). Every section keeps its 1-based page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glm_agent.exceptions import MissingDependencyError
from glm_agent.retrieval._load_notes import note
from glm_agent.retrieval.records import Section
from glm_agent.retrieval.tables import markdown_table

__all__ = ["OCR_DPI", "load_pdf"]

OCR_DPI = 200
"""Resolution scanned pages are rendered at for OCR (PP-OCR reads 10-pt text well from 150 up)."""

_TEXT_TABLES = {
    "vertical_strategy": "text",
    "horizontal_strategy": "text",
    "min_words_vertical": 3,
    "min_words_horizontal": 2,
    # a header like "Delivery days" is one cell, not a cell and a stray word beside the table
    "text_keep_blank_chars": True,
}


def _pdfplumber() -> Any:
    try:
        import pdfplumber
    except ImportError as e:
        raise MissingDependencyError("pdfplumber", "retrieval", "PDF documents") from e
    return pdfplumber


def _looks_like_table(rows: list[list[Any]]) -> bool:
    """Whether rows found from word alignment alone are a table rather than prose in columns."""
    rows = [r for r in rows if any(c not in (None, "") for c in r)]
    if len(rows) < 3 or max((len(r) for r in rows), default=0) < 2:
        return False
    filled = sum(c not in (None, "") for r in rows for c in r)
    return filled >= 0.6 * sum(len(r) for r in rows)


def _tables(page: Any) -> list[tuple[tuple[float, float, float, float], str]]:
    """(bbox, Markdown) of the page's tables, top to bottom."""
    found = [(t.bbox, t.extract()) for t in page.find_tables()]
    if not found:
        found = [
            (t.bbox, rows)
            for t in page.find_tables(table_settings=_TEXT_TABLES)
            if _looks_like_table(rows := t.extract())
        ]
    out = [(bbox, md) for bbox, rows in found if (md := markdown_table(rows))]
    return sorted(out, key=lambda t: t[0][1])


def _outside(page: Any, boxes: list[tuple[float, float, float, float]]) -> Any:
    def keep(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, top = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and t0 <= top <= t1 for x0, t0, x1, t1 in boxes)

    return page.filter(keep)


def _page_sections(page: Any, number: int) -> list[Section]:
    tables = _tables(page)
    if not tables:
        text = (page.extract_text() or "").strip()
        return [Section(text, page=number)] if text else []
    rest = _outside(page, [b for b, _ in tables])
    sections: list[Section] = []
    top = 0.0
    for (_x0, t0, _x1, t1), md in tables:
        above = rest.crop((0, top, page.width, max(t0, top)), strict=False)
        if text := (above.extract_text() or "").strip():
            sections.append(Section(text, page=number))
        sections.append(Section(md, page=number, table=True))
        top = max(top, t1)
    below = rest.crop((0, min(top, page.height), page.width, page.height), strict=False)
    if text := (below.extract_text() or "").strip():
        sections.append(Section(text, page=number))
    return sections


def _ocr_page(path: Path, index: int) -> str:
    try:
        import pypdfium2
    except ImportError as e:
        raise MissingDependencyError("pypdfium2", "ocr", "OCR of scanned PDF pages") from e
    from glm_agent.retrieval.ocr import ocr_text

    doc = pypdfium2.PdfDocument(str(path))
    try:
        image = doc[index].render(scale=OCR_DPI / 72).to_pil()
    finally:
        doc.close()
    return ocr_text(image)


def load_pdf(path: Path, *, ocr: bool = True) -> tuple[str, list[Section]]:
    """A PDF's title and sections: per page, text and Markdown tables in reading order; pages
    without a text layer read by OCR when `ocr` (the `ocr` extra) is available.
    """
    pdfplumber = _pdfplumber()
    sections: list[Section] = []
    scanned: list[int] = []
    with pdfplumber.open(str(path)) as pdf:
        title = str((pdf.metadata or {}).get("Title") or "")
        for number, page in enumerate(pdf.pages, start=1):
            if page.chars:
                sections += _page_sections(page, number)
            elif ocr and page.images:
                scanned.append(number)
                if text := _ocr_page(path, number - 1).strip():
                    sections.append(Section(text, page=number))
            page.close()  # pdfplumber caches each page's objects until closed
    if scanned:
        note(f"read by OCR: page{'s' if len(scanned) > 1 else ''} {', '.join(map(str, scanned))}")
    return title or path.stem, sections
