"""Character accuracy of OCR (RapidOCR, PP-OCRv4, the `ocr` extra) on generated scans and photos.

Pages are rendered here from known text (Chinese and English policy lines, WenQuanYi Micro Hei),
then degraded as documents come in: a "scan" (rotated 1.5°, Gaussian noise, slight blur, 200 dpi
equivalent) and a "photo" (rotated 4°, perspective skew, uneven lighting, stronger noise, JPEG
quality 60). The text is read back through the loaders (`read_document`: PNG / JPEG image, and a
PDF whose page is only a scan) and compared with the rendered text: character accuracy is
1 - edit distance / reference length, over the text without whitespace (OCR's spacing is not the
question), per language. Baseline in the same run: the clean rendering, undegraded.

    python benchmarks/ocr_accuracy.py [--out benchmarks/results/ocr_accuracy.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LINES = {
    "zh": [
        "退货政策：商品签收后七天内可以无理由退货。",
        "运费：新疆、西藏地区每单运费二十元。",
        "退款将在五个工作日内退回原支付账户。",
        "会员积分可抵扣订单金额的百分之十。",
    ],
    "en": [
        "Refunds are paid within five business days.",
        "Express shipping to Xinjiang costs 20 yuan per order.",
        "Opened software cannot be returned for a refund.",
        "Members earn two points for every dollar spent.",
    ],
}


def render(lines: list[str], *, kind: str, seed: int = 0) -> object:
    """A page image of `lines`: clean, a scan or a photo (a PIL image)."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(FONT, 30)
    img = Image.new("L", (1100, 70 * len(lines) + 80), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((50, 40 + 70 * i), line, font=font, fill=20)
    rng = np.random.default_rng(seed)
    if kind == "clean":
        return img.convert("RGB")
    angle, sigma, blur = (1.5, 18, 0.5) if kind == "scan" else (4.0, 28, 0.9)
    img = img.rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    if kind == "photo":
        w, h = img.size
        # a phone held at a slight angle: the top edge shorter than the bottom
        coeffs = _perspective(
            [(0, 0), (w, 0), (w, h), (0, h)], [(30, 10), (w - 25, 0), (w, h), (0, h - 5)]
        )
        img = img.transform(
            (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=255
        )
        light = np.linspace(0.75, 1.0, w)[None, :] * np.linspace(0.9, 1.0, h)[:, None]
        img = Image.fromarray((np.asarray(img, dtype=np.float32) * light).astype(np.uint8))
    a = np.asarray(img, dtype=np.float32) + rng.normal(0, sigma, (img.size[1], img.size[0]))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(blur)
    )
    return img.convert("RGB")


def _perspective(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """PIL's perspective coefficients mapping output points `src` to input points `dst`."""
    m = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        m.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        m.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    b = np.array([c for p in dst for c in p], dtype=np.float64)
    return np.linalg.solve(np.array(m, dtype=np.float64), b).tolist()


def accuracy(reference: str, text: str) -> float:
    """1 - Levenshtein distance / len(reference), whitespace removed from both."""
    a, b = "".join(reference.split()), "".join(text.split())
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return max(0.0, 1 - prev[-1] / max(len(a), 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results/ocr_accuracy.json"))
    args = ap.parse_args()
    from glm_agent.retrieval import read_document

    rows = []
    with TemporaryDirectory() as tmp:
        for lang, lines in LINES.items():
            for kind, fmt in (("clean", "png"), ("scan", "png"), ("photo", "jpg"), ("scan", "pdf")):
                img = render(lines, kind=kind)
                path = Path(tmp) / f"{lang}-{kind}.{fmt}"
                if fmt == "pdf":
                    img.save(path, "PDF", resolution=200)  # a page that is only an image
                else:
                    img.save(path, quality=60) if fmt == "jpg" else img.save(path)
                t0 = time.perf_counter()
                doc = read_document(path)
                seconds = time.perf_counter() - t0
                text = "\n".join(s.text for s in doc.sections)
                row = {
                    "lang": lang,
                    "input": f"{kind} ({fmt})",
                    "char_accuracy": round(accuracy("\n".join(lines), text), 4),
                    "seconds": round(seconds, 2),
                    "pages": sorted({s.page for s in doc.sections if s.page is not None}),
                }
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    print("\n| language | input | character accuracy | seconds | pages cited |")
    print("| --- | --- | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['lang']} | {r['input']} | {r['char_accuracy']:.4f} | {r['seconds']} | {r['pages'] or '-'} |"
        )
    print("\nbaseline: the clean rendering of the same text, read the same way in the same run")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
