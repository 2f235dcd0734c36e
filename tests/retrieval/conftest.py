"""Small real documents of every supported type, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"

MARKDOWN = """# Refund Policy

Intro text about refunds.

## Eligibility

Customers can get a full refund within 30 days of purchase. Opened software is not refundable.

## 退款流程

客户需要在购买后三十天内提交退款申请。退款将在七个工作日内退回原支付方式。

```python
# not a heading inside a code fence
```
"""

HTML = """<html><head><title>Shipping Guide</title><style>p {color: red}</style></head>
<body><h1>Shipping</h1><p>Standard shipping takes 3 to 5 business days.</p>
<h2>Express</h2><p>Express shipping arrives the next day and costs $15.</p>
<script>var ignored = "do not index me";</script>
<ul><li>Tracking numbers are emailed after dispatch.</li></ul></body></html>"""


def write_pdf(path: Path, pages: list[str]) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Warranty Terms")
    for text in pages:
        c.drawString(72, 760, text)
        c.showPage()
    c.save()


def write_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "Account Security"
    d.add_heading("Account Security", level=1)
    d.add_heading("Passwords", level=2)
    d.add_paragraph("Passwords must be reset every ninety days and contain twelve characters.")
    d.add_heading("Two-factor login", level=2)
    d.add_paragraph("Two-factor authentication uses an authenticator app or SMS codes.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Plan"
    table.cell(0, 1).text = "Seats"
    table.cell(1, 0).text = "Enterprise"
    table.cell(1, 1).text = "500"
    d.save(str(path))


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one small document of each supported type (and one broken PDF)."""
    d = tmp_path_factory.mktemp("docs")
    (d / "refund.md").write_text(MARKDOWN, encoding="utf-8")
    (d / "shipping.html").write_text(HTML, encoding="utf-8")
    (d / "hours.txt").write_text(
        "Our support line is open Monday to Friday, 9am to 6pm. 周末客服热线不开放。",
        encoding="utf-8",
    )
    (d / "prices.csv").write_text(
        "product,price,currency\nBasic plan,10,USD\nPro plan,30,USD\n", encoding="utf-8"
    )
    (d / "faq.json").write_text(
        json.dumps(
            [
                {
                    "question": "Can I change my delivery address?",
                    "answer": "Yes, before dispatch.",
                },
                {"question": "Do you ship abroad?", "answer": "We ship to 40 countries."},
            ]
        ),
        encoding="utf-8",
    )
    (d / "tickets.jsonl").write_text(
        '{"id": 1, "text": "Printer jams when paper is damp"}\n'
        '{"id": 2, "text": "Battery drains overnight after the update"}\n',
        encoding="utf-8",
    )
    sub = d / "manuals"
    sub.mkdir()
    write_pdf(sub / "warranty.pdf", ["The warranty lasts two years.", "Batteries have one year."])
    write_docx(sub / "security.docx")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    return d
