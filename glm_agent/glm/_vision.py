"""How many prompt tokens an image costs, per family, without loading its pixels.

A GLM vision processor resizes an image onto a grid of 14-pixel patches (a multiple of 28 on
each side), merges them 2x2, and puts one `<|image|>` token per merged patch between
`<|begin_of_image|>` and `<|end_of_image|>`. The families differ in how they choose the size:

- GLM-4.1V, GLM-4.5V, GLM-4.6V (`glm41v`, `glm45`): transformers' `Glm4vImageProcessor` /
  `Glm46VImageProcessor` `smart_resize`: round each side to a multiple of 28, then scale into
  [112x112, 28x28x15000] pixels (doubled for the two temporal patches).
- GLM-5.3-Flash (`glm53`): `Glm5NextImageProcessor`: round up to multiples of 28, then the
  largest size within 8,000 merged tokens (at least 16).

These are the processors' defaults (transformers 5.24); a checkpoint's own
`preprocessor_config.json` may set other limits, and `LocalGLM` counts with the checkpoint's
processor itself. Tested against the processors (tests/glm/test_glm_images.py) and measured by
`benchmarks/image_tokens.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from glm_agent.media import VIDEO_TOKENS
from glm_agent.messages import ImagePart, MediaPart

__all__ = ["VisionFacts", "image_tokens", "media_tokens", "vision_facts"]


@dataclass(frozen=True)
class VisionFacts:
    """One family's image processor defaults."""

    resize: Literal["pixels", "tokens"]
    """`pixels`: GLM-4V's `smart_resize` (a pixel range); `tokens`: GLM-5.3's (a token range)."""
    low: int
    """Least pixels (`pixels`) or merged tokens (`tokens`)."""
    high: int
    """Most pixels (`pixels`) or merged tokens (`tokens`)."""
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2


_GLM4V = VisionFacts("pixels", 112 * 112, 28 * 28 * 15000)
_VISION: dict[str, VisionFacts] = {
    "glm41v": _GLM4V,
    "glm45": _GLM4V,
    "glm53": VisionFacts("tokens", 16, 8000),
}


def vision_facts(family: str) -> VisionFacts | None:
    """The image processor defaults of `family`; None for a family without images."""
    return _VISION.get(family)


def _resize_pixels(v: VisionFacts, height: int, width: int) -> tuple[int, int]:
    # transformers' glm4v smart_resize, with num_frames = temporal_factor
    factor, t = v.patch_size * v.merge_size, v.temporal_patch_size
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if t * h_bar * w_bar > v.high:
        beta = math.sqrt((t * height * width) / v.high)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t * h_bar * w_bar < v.low:
        beta = math.sqrt(v.low / (t * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _resize_tokens(v: VisionFacts, height: int, width: int) -> tuple[int, int]:
    # transformers' glm5_next smart_resize: a budget in merged tokens
    factor, t = v.patch_size * v.merge_size, v.temporal_patch_size
    per_token = t * factor**2
    low, high = v.low * per_token, v.high * per_token

    def align(x: float) -> int:
        return math.ceil(x / factor) * factor

    h_bar, w_bar = align(height), align(width)
    if t * h_bar * w_bar < low:
        scale = math.sqrt(low / (t * height * width))
        h_bar, w_bar = (
            align(max(1, math.ceil(height * scale))),
            align(max(1, math.ceil(width * scale))),
        )
    if t * h_bar * w_bar > high:
        lo, hi, best = 1, height, (factor, factor)
        while lo <= hi:  # the tallest content height whose aligned canvas fits the budget
            mid = (lo + hi) // 2
            cand = (align(mid), align(max(1, math.floor(width * mid / height))))
            if t * cand[0] * cand[1] <= high:
                best, lo = cand, mid + 1
            else:
                hi = mid - 1
        h_bar, w_bar = best
    return h_bar, w_bar


def image_tokens(family: str, width: int, height: int) -> int | None:
    """Prompt tokens of one image of `width` x `height` pixels, placeholders included;
    None for a family without images."""
    v = _VISION.get(family)
    if v is None:
        return None
    resize = _resize_pixels if v.resize == "pixels" else _resize_tokens
    h, w = resize(v, height, width)
    return (h // v.patch_size) * (w // v.patch_size) // v.merge_size**2 + 2


def media_tokens(family: str, part: MediaPart) -> int | None:
    """Prompt tokens of an image or video part for `family` (an image of unknown size counts
    as 1024x1024; a video as `VIDEO_TOKENS`); None for a family without images."""
    if family not in _VISION:
        return None
    if isinstance(part, ImagePart):
        return image_tokens(family, part.width or 1024, part.height or 1024)
    return VIDEO_TOKENS
