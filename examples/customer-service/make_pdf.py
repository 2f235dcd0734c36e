"""Write knowledge/warranty-guide.pdf (the example's PDF document) with reportlab.

    python make_pdf.py

The generated PDF is committed; run this again after editing the text below.
"""

from __future__ import annotations

from pathlib import Path

SECTIONS = [
    (
        "Warranty",
        "Kitchen appliances (kettles, aroma diffusers, desk lamps) carry a one-year warranty "
        "from the delivery date. Cast iron pots carry a five-year warranty against cracks. "
        "The warranty covers manufacturing faults, not wear, drops or misuse.",
    ),
    (
        "How to claim",
        "Start a warranty claim in the chat with the order number and a photo or video of the "
        "fault. A human agent reviews every claim within one working day and sends a "
        "replacement or a repair label.",
    ),
    (
        "Product care",
        "Oil bamboo cutting boards once a month and never put them in the dishwasher. Wash "
        "linen sheets at 40 degrees and dry them flat. Season cast iron pots after each wash.",
    ),
]


def build(path: Path = Path(__file__).parent / "knowledge" / "warranty-guide.pdf") -> Path:
    """Write the PDF at `path` and return the path."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=True)  # invariant: same bytes each run
    pdf.setTitle("Bamboo Lane warranty and product care guide")
    width, height = A4
    y = height - 72
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(72, y, "Bamboo Lane warranty and product care guide")
    y -= 36
    for title, body in SECTIONS:
        pdf.setFont("Helvetica-Bold", 12)
        pdf.drawString(72, y, title)
        y -= 18
        pdf.setFont("Helvetica", 10)
        line = ""
        for word in body.split():
            if pdf.stringWidth(line + " " + word, "Helvetica", 10) > width - 144:
                pdf.drawString(72, y, line)
                y -= 14
                line = word
            else:
                line = f"{line} {word}".strip()
        pdf.drawString(72, y, line)
        y -= 28
    pdf.save()
    return path


if __name__ == "__main__":
    print(build())
