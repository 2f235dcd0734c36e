"""Tables in PDF (ruled and unruled) and DOCX become Markdown tables in the chunks, and a table
split across chunks repeats its header row, so the row a question needs is found and readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from glm_agent.retrieval import (
    KnowledgeBase,
    Section,
    chunk_sections,
    estimate_tokens,
    markdown_table,
    read_document,
    split_markdown_table,
)

REGIONS = [
    ("Beijing", 8, 2), ("Shanghai", 8, 2), ("Guangdong", 10, 3), ("Sichuan", 12, 4),
    ("Gansu", 15, 5), ("Qinghai", 18, 6), ("Xinjiang", 20, 7), ("Tibet", 25, 9),
]  # fmt: skip
HEADER = ["Region", "Fee (CNY)", "Delivery days"]
MD_HEADER = "| Region | Fee (CNY) | Delivery days |"


def write_table_pdf(path: Path, *, ruled: bool, repeat: int = 1) -> None:
    """A PDF with a sentence, a table of shipping fees (drawn grid or none) and a sentence."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    rows = [HEADER] + [[r, str(f), str(d)] for r, f, d in REGIONS] * repeat
    table = Table(rows)
    if ruled:
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    style = getSampleStyleSheet()["Normal"]
    doc = SimpleDocTemplate(str(path), pagesize=A4, title="Shipping Fees")
    doc.build(
        [
            Paragraph("Shipping fees by region are listed below.", style),
            Spacer(1, 12),
            table,
            Spacer(1, 12),
            Paragraph("Remote regions take longer to reach.", style),
        ]
    )


@pytest.mark.parametrize("ruled", [True, False], ids=["ruled", "unruled"])
def test_pdf_tables_become_markdown(tmp_path: Path, ruled: bool) -> None:
    path = tmp_path / "fees.pdf"
    write_table_pdf(path, ruled=ruled)
    doc = read_document(path)
    assert doc.title == "Shipping Fees"
    texts = [(s.table, s.page, s.text) for s in doc.sections]
    assert texts[0] == (False, 1, "Shipping fees by region are listed below.")
    assert texts[-1] == (False, 1, "Remote regions take longer to reach.")
    tables = [t for table, _, t in texts if table]
    assert len(tables) == 1
    lines = tables[0].split("\n")
    assert lines[0] == MD_HEADER and lines[1] == "| --- | --- | --- |"
    assert "| Xinjiang | 20 | 7 |" in lines and len(lines) == 2 + len(REGIONS)


def test_docx_tables_in_document_order(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Shipping", level=1)
    d.add_paragraph("Fees by region:")
    t = d.add_table(rows=1 + len(REGIONS), cols=3)
    for j, h in enumerate(HEADER):
        t.cell(0, j).text = h
    for i, (r, f, days) in enumerate(REGIONS, start=1):
        for j, v in enumerate((r, str(f), str(days))):
            t.cell(i, j).text = v
    d.add_paragraph("Prices include tax.")
    d.save(str(tmp_path / "fees.docx"))
    sections = read_document(tmp_path / "fees.docx").sections
    assert [s.table for s in sections] == [False, True, False]
    assert sections[1].heading_path == ("Shipping",)
    assert sections[1].text.split("\n")[0] == MD_HEADER
    assert "| Xinjiang | 20 | 7 |" in sections[1].text


def test_a_split_table_repeats_its_header() -> None:
    rows = [HEADER] + [[f"Region {i}", str(i), "3"] for i in range(80)]
    md = markdown_table(rows)
    pieces = split_markdown_table(md, 60, estimate_tokens)
    assert len(pieces) > 3
    assert all(p.startswith(MD_HEADER + "\n| --- | --- | --- |\n") for p in pieces)
    assert all(estimate_tokens(p) <= 60 for p in pieces)
    body = [line for p in pieces for line in p.split("\n")[2:]]
    assert body == md.split("\n")[2:]  # every row once, in order
    chunks = chunk_sections(
        [Section("Fees:"), Section(md, table=True), Section("The end.")],
        source="fees",
        title="Fees",
        chunk_size=60,
        overlap=8,
    )
    table_chunks = [c for c in chunks if "| Region " in c.text]
    assert len(table_chunks) == len(pieces)
    assert all(MD_HEADER in c.text for c in table_chunks)
    assert markdown_table([["a|b", None], ["", ""], ["x\ny", "2"]]) == (
        "| a\\|b |  |\n| --- | --- |\n| x y | 2 |"
    )


def test_the_row_a_question_needs_is_found_with_its_header(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_table_pdf(docs / "ruled.pdf", ruled=True, repeat=4)  # a long table: several chunks
    (docs / "other.md").write_text("# Returns\n\nReturns are free within 30 days.\n")
    kb = KnowledgeBase(tmp_path / "kb", embedder="test", chunk_size=80)
    kb.ingest(docs)
    hits = kb.search("how much is shipping to Xinjiang", k=3, mode="bm25")
    top = hits[0]
    assert top.citation.source.endswith("ruled.pdf") and top.citation.page == 1
    assert MD_HEADER in top.text and "| Xinjiang | 20 | 7 |" in top.text
