"""OCR of scanned pages and photos: RapidOCR (PP-OCRv4 Chinese and English) on onnxruntime.

The models ship inside the `rapidocr-onnxruntime` wheel, so nothing is downloaded at run time.
The engine is loaded once per process, on first use, and shared by threads (one at a time: the
ONNX sessions already use every core).

PP-OCRv4's recogniser often drops the spaces between English words ("Refundsarepaid"); long
runs of Latin letters are split back into words by wordninja's English word frequencies.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from glm_agent.exceptions import MissingDependencyError

__all__ = ["OcrLine", "ocr_image", "ocr_text"]

_engine: Any = None
_lock = threading.Lock()
# A Latin run this long with no space in it is several words run together (or a long word, which
# the word splitter keeps whole).
_RUN = re.compile(r"[A-Za-z][A-Za-z0-9'’]{9,}")


@dataclass(frozen=True)
class OcrLine:
    """One line of recognised text.

    Attributes:
        text: The text.
        score: The recogniser's confidence, 0 to 1.
        box: Corners of the line in the image, `[[x, y], ...]` clockwise from top left.
    """

    text: str
    score: float
    box: tuple[tuple[float, float], ...]


def _load() -> Any:
    global _engine
    if _engine is None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:
            raise MissingDependencyError(
                "rapidocr-onnxruntime", "ocr", "OCR of scanned pages and images"
            ) from e
        _engine = RapidOCR()
    return _engine


def _respace(text: str) -> str:
    try:
        import wordninja
    except ImportError:
        return text

    def split(m: re.Match[str]) -> str:
        words = wordninja.split(m.group())
        return " ".join(words) if "".join(words) == m.group() else m.group()

    return _RUN.sub(split, text)


def ocr_image(image: Any) -> list[OcrLine]:
    """The text lines of an image, in reading order.

    Args:
        image: A PIL image, an `[H, W, 3]` uint8 RGB array, a file path or encoded bytes.
    """
    import numpy as np

    if hasattr(image, "convert"):  # PIL
        image = np.asarray(image.convert("RGB"))
    with _lock:
        result, _ = _load()(image)
    lines = [
        OcrLine(_respace(str(text)), float(score), tuple((float(x), float(y)) for x, y in box))
        for box, text, score in (result or [])
    ]
    return lines  # RapidOCR returns them in reading order


def ocr_text(image: Any, *, min_score: float = 0.5) -> str:
    """The text of an image, a line per recognised line (lines on one row joined by spaces).

    Args:
        image: See `ocr_image`.
        min_score: Lines recognised with less confidence are left out.
    """
    rows: list[list[OcrLine]] = []
    for line in ocr_image(image):
        if line.score < min_score or not line.text.strip():
            continue
        top, bottom = line.box[0][1], line.box[-1][1]
        if rows and abs(rows[-1][0].box[0][1] - top) < 0.5 * max(bottom - top, 1):
            rows[-1].append(line)
        else:
            rows.append([line])
    return "\n".join(
        " ".join(ln.text for ln in sorted(r, key=lambda ln: ln.box[0][0])) for r in rows
    )
