"""Images in messages: `data:` URLs, stored references, what an image is and whether to take it.

Pure Python, no Pillow: an image's type and size are read from its header (PNG, JPEG, GIF,
WebP), which is all a store, a limit or a token count needs. Decoding pixels is left to the
model's own image processor (the local runtime) or to the serving engine.

```python
from glm_agent.media import MediaLimits, check_image, parse_data_url

mime, data = parse_data_url(url)  # MediaError: not a base64 image data: URL
info = check_image(data, MediaLimits(max_bytes=2 * 2**20))  # MediaError: too large...
print(info.mime, info.width, info.height)
```

An image a session store keeps is referred to as `media:<sha256 hex>` (`media_ref`): messages
in a session carry that reference, and only the turns sent to the model get their bytes back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import struct
from dataclasses import dataclass

from glm_agent.exceptions import MediaError

__all__ = [
    "DEFAULT_LIMITS",
    "IMAGE_TYPES",
    "MEDIA_REF_PREFIX",
    "VIDEO_TOKENS",
    "ImageInfo",
    "MediaLimits",
    "check_image",
    "estimate_image_tokens",
    "inspect_image",
    "media_ref",
    "parse_data_url",
    "ref_digest",
    "to_data_url",
]

IMAGE_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""Image types taken: what browsers send and every GLM image processor reads."""

VIDEO_TOKENS = 8192
"""What a video is counted as: its frames and length are not known before the serving engine
samples it (GLM-4.1V samples up to a few hundred frames); a deliberate overestimate."""

MEDIA_REF_PREFIX = "media:"
"""How a message refers to an image kept by its session store: `media:` + sha256 hex."""

_REF = re.compile(r"^media:([0-9a-f]{64})$")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII)


@dataclass(frozen=True)
class MediaLimits:
    """What images are taken.

    Attributes:
        max_bytes: Largest image, in bytes (encoded, as sent).
        max_pixels: Most pixels (width x height): a guard against decompression bombs; GLM's
            processors resize to at most a few megapixels anyway.
        max_images: Most images in one message.
        types: MIME types taken.
    """

    max_bytes: int = 5 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_images: int = 8
    types: tuple[str, ...] = IMAGE_TYPES


DEFAULT_LIMITS = MediaLimits()
"""The limits used where none are given."""


@dataclass(frozen=True)
class ImageInfo:
    """An image's type and size, read from its header."""

    mime: str
    """`image/png`, `image/jpeg`, `image/gif` or `image/webp`."""
    width: int
    """Pixels across."""
    height: int
    """Pixels down."""
    size: int
    """Bytes."""
    sha256: str
    """Hex digest of the bytes (the id a store keeps it under)."""


def _mb(n: int) -> str:
    """A size as people read it: `2.5 MB`, `48 KB`, `900 bytes`."""
    if n >= 2**20:
        return f"{n / 2**20:.1f} MB"
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def parse_data_url(url: str) -> tuple[str, bytes]:
    """The declared MIME type and the bytes of a base64 `data:` URL.

    Raises:
        MediaError: not a base64 `data:` URL, or its base64 is broken (`invalid_image`).
    """
    m = _DATA_URL.match(url)
    if m is None:
        head = url[:40] + ("..." if len(url) > 40 else "")
        raise MediaError(
            f"not a base64 data: URL ({head!r}); expected data:image/<type>;base64,<data>",
            code="invalid_image",
        )
    try:
        data = base64.b64decode(url[m.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("the data: URL's base64 is malformed", code="invalid_image") from None
    return m.group(1).lower(), data


def to_data_url(mime: str, data: bytes) -> str:
    """A base64 `data:` URL of `data`."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def media_ref(sha256: str) -> str:
    """The reference a stored image goes by in messages (`media:<sha256 hex>`)."""
    return MEDIA_REF_PREFIX + sha256


def ref_digest(url: str) -> str | None:
    """The sha256 hex of a `media:` reference; None for any other URL."""
    m = _REF.match(url)
    return m.group(1) if m else None


# --- headers ----------------------------------------------------------------------------------


def _png(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return int(w & 0x3FFF), int(h & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless...; not DHT C4, JPG C8, DAC CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # standalone markers: no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        if marker == 0xDA or length < 2:  # image data before any frame header: broken
            return None
        i += 2 + length
    return None


def inspect_image(data: bytes) -> ImageInfo | None:
    """The type and size of an image from its header; None when it is not a PNG, JPEG, GIF or
    WebP image (or its header is cut short)."""
    found: tuple[str, tuple[int, int] | None] | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        found = ("image/png", _png(data))
    elif data.startswith(b"\xff\xd8\xff"):
        found = ("image/jpeg", _jpeg(data))
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        found = ("image/gif", _gif(data))
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        found = ("image/webp", _webp(data))
    if found is None or found[1] is None or 0 in found[1]:
        return None
    mime, (w, h) = found[0], found[1]
    return ImageInfo(mime, w, h, len(data), hashlib.sha256(data).hexdigest())


def check_image(data: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> ImageInfo:
    """The image's type and size, after checking it against `limits`.

    Raises:
        MediaError: over `max_bytes` (`image_too_large`), not a readable image
            (`invalid_image`), a type outside `types` (`unsupported_media_type`), over
            `max_pixels` or stretched past GLM's 200:1 aspect ratio (`image_too_large`,
            `invalid_image`).
    """
    if len(data) > limits.max_bytes:
        raise MediaError(
            f"image is {_mb(len(data))}; the limit is {_mb(limits.max_bytes)}",
            code="image_too_large",
        )
    info = inspect_image(data)
    if info is None:
        raise MediaError(
            "not a readable image; types taken: " + ", ".join(limits.types),
            code="invalid_image",
        )
    if info.mime not in limits.types:
        raise MediaError(
            f"image type {info.mime} is not taken; types taken: {', '.join(limits.types)}",
            code="unsupported_media_type",
        )
    if info.width * info.height > limits.max_pixels:
        raise MediaError(
            f"image is {info.width}x{info.height} pixels; the limit is "
            f"{limits.max_pixels:,} pixels",
            code="image_too_large",
        )
    if max(info.width, info.height) / min(info.width, info.height) > 200:
        raise MediaError(
            f"image is {info.width}x{info.height}: GLM's vision models take aspect ratios up "
            "to 200:1",
            code="invalid_image",
        )
    return info


def estimate_image_tokens(width: int | None, height: int | None) -> int:
    """Prompt tokens an image costs when the model's own count is not at hand.

    GLM's vision processors cut an image into 14-pixel patches merged 2x2, so one token
    covers about 28x28 pixels, within about 6,300 pixels and 5.9 megapixels (GLM-4.1V's
    processor limits, which count an image twice, as two temporal frames); two more tokens
    open and close the image. An image of unknown size counts as 1024x1024 (1,340 tokens).
    `benchmarks/image_tokens.py` compares it with the processors.
    """
    w, h = width or 1024, height or 1024
    pixels = min(max(w * h, 112 * 112 // 2), 28 * 28 * 15000 // 2)
    return math.ceil(pixels / (28 * 28)) + 2
