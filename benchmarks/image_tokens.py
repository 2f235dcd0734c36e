"""Image tokens per GLM family: glm-agent's count from an image's size, against the baseline of
transformers' own image processors run on real pixels in the same run; and what an image costs
a tiny local vision model, against the same prompt without it.

Baselines (same run):

- table 1: `Glm4vImageProcessor` (GLM-4.1V, GLM-4.5V), `Glm46VImageProcessor` (GLM-4.6V) and
  `Glm5NextImageProcessor` (GLM-5.3-Flash), Pillow backend, default arguments, each processing
  the image's pixels (`image_grid_thw` → tokens). Ours: `glm_agent.glm.image_tokens` (the
  header's width and height only) and the generic `glm_agent.media.estimate_image_tokens`
  (no family). Also the time per count.
- table 2: a tiny random-weight `glm4v` checkpoint (`tiny_glm`), CPU, greedy, 8 new tokens:
  prompt tokens and request time with one image against the same question without it.

    .venv/bin/python benchmarks/image_tokens.py [--rounds N] [--no-runtime]

Prints markdown tables and writes benchmarks/results/image_tokens.json.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from glm_agent.glm import image_tokens
from glm_agent.media import estimate_image_tokens, inspect_image

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT.parent / "shared" / "glm" / "glm-4-9b-chat" / "tokenizer.model"
SIZES = [  # (label, width, height)
    ("phone photo 4:3", 4032, 3024),
    ("phone photo, widget-shrunk", 1568, 1176),
    ("phone portrait", 1170, 2532),
    ("screenshot 1080p", 1920, 1080),
    ("receipt scan", 800, 2400),
    ("thumbnail", 320, 240),
    ("icon", 32, 32),
    ("panorama 8:1", 4000, 500),
]


def processors() -> dict[str, Any]:
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil
    from transformers.models.glm5_next.image_processing_pil_glm5_next import (
        Glm5NextImageProcessorPil,
    )
    from transformers.models.glm46v.image_processing_pil_glm46v import Glm46VImageProcessorPil

    return {
        "glm41v": Glm4vImageProcessorPil(),
        "glm45 (4.6V)": Glm46VImageProcessorPil(),
        "glm53": Glm5NextImageProcessorPil(),
    }


def jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 90, 60)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def table1(rounds: int) -> list[dict[str, Any]]:
    from PIL import Image

    rows = []
    procs = processors()
    for label, w, h in SIZES:
        data = jpeg(w, h)
        for name, proc in procs.items():
            family = name.split()[0]
            t0 = time.perf_counter()
            for _ in range(rounds):
                out = proc(images=[Image.open(io.BytesIO(data))], return_tensors="np")
            t_proc = (time.perf_counter() - t0) / rounds
            thw = out["image_grid_thw"][0]
            theirs = int(thw[0] * thw[1] * thw[2]) // 4 + 2
            t0 = time.perf_counter()
            for _ in range(rounds):
                info = inspect_image(data)
                assert info is not None
                ours = image_tokens(family, info.width, info.height)
            t_ours = (time.perf_counter() - t0) / rounds
            rows.append(
                {
                    "image": label,
                    "size": f"{w}x{h}",
                    "family": name,
                    "processor_tokens": theirs,
                    "glm_agent_tokens": ours,
                    "generic_estimate": estimate_image_tokens(w, h),
                    "processor_ms": round(t_proc * 1000, 2),
                    "glm_agent_ms": round(t_ours * 1000, 3),
                }
            )
    return rows


def table2(rounds: int) -> list[dict[str, Any]]:
    from glm_agent.messages import ImagePart, TextPart, UserMessage
    from glm_agent.models.local import LocalGLM
    from glm_agent.runtime import tiny_glm
    from glm_agent.settings import ModelSettings

    settings = ModelSettings(temperature=0, max_tokens=8)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        model = LocalGLM(
            tiny_glm(Path(tmp) / "glm4v", model_type="glm4v", tokenizer_path=TOKENIZER)
        )
        try:
            for label, w, h in [("no image", 0, 0), *[s for s in SIZES if s[1] <= 1600]]:
                if w:
                    photo = ImagePart.from_bytes(jpeg(w, h))
                    msg = UserMessage(content=(TextPart(text="What is wrong here?"), photo))
                else:
                    msg = UserMessage(content="What is wrong here?")
                model.request_sync([msg], settings=settings)  # warm-up
                times, usage = [], None
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    usage = model.request_sync([msg], settings=settings).usage
                    times.append(time.perf_counter() - t0)
                assert usage is not None
                out.append(
                    {
                        "prompt": label if not w else f"{label} ({w}x{h})",
                        "prompt_tokens": usage.input_tokens,
                        "counted": model.count_media_tokens(photo) if w else 0,
                        "request_ms_median": round(statistics.median(times) * 1000, 1),
                    }
                )
        finally:
            model.batcher.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-runtime", action="store_true")
    args = parser.parse_args()
    t1 = table1(args.rounds)
    print("## Image tokens: glm-agent's count from the size vs the processor on the pixels\n")
    print(
        "| image | size | family | processor | glm-agent | generic estimate | processor ms | glm-agent ms |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in t1:
        print(
            f"| {r['image']} | {r['size']} | {r['family']} | {r['processor_tokens']} | "
            f"{r['glm_agent_tokens']} | {r['generic_estimate']} | {r['processor_ms']} | "
            f"{r['glm_agent_ms']} |"
        )
    agree = sum(r["processor_tokens"] == r["glm_agent_tokens"] for r in t1)
    print(f"\nglm-agent equals the processor on {agree} of {len(t1)} rows.")
    result: dict[str, Any] = {"platform": platform.platform(), "counts": t1}
    if not args.no_runtime:
        t2 = table2(max(1, args.rounds // 2))
        print("\n## A tiny glm4v checkpoint on CPU: one image vs none (8 new tokens, greedy)\n")
        print("| prompt | prompt tokens | image tokens counted | request ms (median) |")
        print("| --- | ---: | ---: | ---: |")
        for r in t2:
            print(
                f"| {r['prompt']} | {r['prompt_tokens']} | {r['counted']} | "
                f"{r['request_ms_median']} |"
            )
        result["runtime"] = t2
    out = ROOT / "benchmarks" / "results" / "image_tokens.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
