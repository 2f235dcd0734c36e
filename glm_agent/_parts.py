"""Content parts: a user's (or a tool result's) text with images and videos, in OpenAI's shape.

`UserMessage.content` and `ToolMessage.content` are a string or a tuple of parts:

```python
UserMessage(content=(TextPart(text="My kettle arrived like this"), ImagePart.from_bytes(jpeg)))
UserMessage(content=[{"type": "text", "text": "What is this?"},
                     {"type": "image_url", "image_url": {"url": "https://example.com/k.jpg"}}])
```

An image's URL is an `http(s)` URL (a serving engine fetches it), a base64 `data:` URL, or a
`media:<sha256>` reference to an image a session store keeps. Videos are taken by `http(s)`
URL only: a video inlined in a message would be copied into every stored turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

from glm_agent.media import (
    DEFAULT_LIMITS,
    VIDEO_TOKENS,
    MediaLimits,
    check_image,
    estimate_image_tokens,
    ref_digest,
    to_data_url,
)

__all__ = [
    "Content",
    "ContentPart",
    "ImagePart",
    "ImageURL",
    "MediaPart",
    "TextPart",
    "VideoPart",
    "VideoURL",
    "content_media",
    "content_text",
    "loggable_content",
    "map_content_text",
    "part_from_openai",
    "parts_from_openai",
    "parts_to_openai",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextPart(_Frozen):
    """A piece of text."""

    type: Literal["text"] = "text"
    text: str
    """The text."""


class ImageURL(_Frozen):
    """Where an image is: `http(s)://...`, `data:image/<type>;base64,...` or `media:<sha256>`."""

    url: str
    """The image's URL."""
    detail: Literal["auto", "low", "high"] | None = None
    """OpenAI's resolution hint (passed on to servers that read it)."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if url.startswith(("https://", "http://", "data:image/")) or ref_digest(url):
            return url
        head = url[:40] + ("..." if len(url) > 40 else "")
        raise ValueError(
            f"an image URL must be http(s)://..., data:image/<type>;base64,... or "
            f"media:<sha256>; got {head!r}"
        )


class ImagePart(_Frozen):
    """An image, in OpenAI's `image_url` part shape (plus its size when known)."""

    type: Literal["image_url"] = "image_url"
    image_url: ImageURL
    """Where the image is."""
    width: int | None = Field(default=None, ge=1)
    """Pixels across, when known (read from the bytes): counts the image's tokens."""
    height: int | None = Field(default=None, ge=1)
    """Pixels down, when known."""

    @property
    def url(self) -> str:
        """The image's URL."""
        return self.image_url.url

    def estimated_tokens(self) -> int:
        """Prompt tokens by GLM's vision processors' rule of thumb (`estimate_image_tokens`)."""
        return estimate_image_tokens(self.width, self.height)

    @classmethod
    def from_bytes(cls, data: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> ImagePart:
        """An image part holding `data` as a `data:` URL, with its size.

        Raises:
            MediaError: the bytes are not an image `limits` takes.
        """
        info = check_image(data, limits)
        url = to_data_url(info.mime, data)
        return cls(image_url=ImageURL(url=url), width=info.width, height=info.height)

    @classmethod
    def from_url(cls, url: str) -> ImagePart:
        """An image part for `url` (for a `data:` URL, its size is read from the bytes).

        Raises:
            MediaError: a `data:` URL that is not an image the default limits take.
        """
        if url.startswith("data:"):
            from glm_agent.media import parse_data_url

            return cls.from_bytes(parse_data_url(url)[1])
        return cls(image_url=ImageURL(url=url))


class VideoURL(_Frozen):
    """Where a video is: an `http(s)` URL."""

    url: str
    """The video's URL."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if url.startswith(("https://", "http://")):
            return url
        raise ValueError(
            f"a video URL must be http(s)://... (videos are not inlined); got {url[:40]!r}"
        )


class VideoPart(_Frozen):
    """A video, in the `video_url` part shape vLLM, SGLang and Zhipu's API read."""

    type: Literal["video_url"] = "video_url"
    video_url: VideoURL
    """Where the video is."""

    @property
    def url(self) -> str:
        """The video's URL."""
        return self.video_url.url

    def estimated_tokens(self) -> int:
        """Prompt tokens assumed for a video (`VIDEO_TOKENS`)."""
        return VIDEO_TOKENS


ContentPart = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]
"""A part of a message's content."""

MediaPart: TypeAlias = ImagePart | VideoPart
"""An image or a video part."""

Content: TypeAlias = str | tuple[ContentPart, ...]
"""A user's or a tool result's content: text, or parts."""


def content_text(content: str | Iterable[Any] | None) -> str:
    """The text of a content: the string, or its text parts joined."""
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(p.text for p in content if isinstance(p, TextPart))


def content_media(content: str | Iterable[Any] | None) -> tuple[MediaPart, ...]:
    """The image and video parts of a content, in order."""
    if content is None or isinstance(content, str):
        return ()
    return tuple(p for p in content if isinstance(p, ImagePart | VideoPart))


_KINDS = "text, image_url, video_url"


def part_from_openai(item: Any, where: str) -> TextPart | ImagePart | VideoPart:
    """One OpenAI content part (or a bare string) as ours.

    Raises:
        ValueError: an unknown part type or a malformed part.
    """
    if isinstance(item, str):
        return TextPart(text=item)
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: a content part must be an object, got {type(item).__name__}")
    kind = item.get("type")
    if kind == "text":
        return TextPart(text=str(item.get("text") or ""))
    if kind in ("image_url", "video_url"):
        ref = item.get(kind)
        url = ref.get("url") if isinstance(ref, Mapping) else ref
        if not isinstance(url, str):
            raise ValueError(f"{where}: a {kind} part needs {kind}.url")
        if kind == "video_url":
            return VideoPart(video_url=VideoURL(url=url))
        detail = ref.get("detail") if isinstance(ref, Mapping) else None
        return ImagePart(image_url=ImageURL(url=url, detail=detail))
    raise ValueError(f"{where}: content part type {kind!r} is not taken; types: {_KINDS}")


def parts_from_openai(content: Any, where: str, *, media: bool = True) -> Content:
    """An OpenAI message `content` as ours: a string, or parts when it holds images or videos
    (text-only part lists are joined into a string).

    Args:
        content: A string, None, or a list of OpenAI content parts.
        where: Names the message in errors (`message 2`).
        media: Whether images and videos may appear (user and tool messages).

    Raises:
        ValueError: an unknown part type, a malformed part, or media where none may be.
    """
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ValueError(f"{where}: content must be a string or a list of parts")
    parts = tuple(part_from_openai(item, where) for item in content)
    if not any(isinstance(p, ImagePart | VideoPart) for p in parts):
        return content_text(parts)
    if not media:
        raise ValueError(f"{where}: images and videos are taken in user and tool messages only")
    return parts


def parts_to_openai(content: Content) -> str | list[dict[str, Any]]:
    """Our content in OpenAI's shape (parts without our size fields)."""
    if isinstance(content, str):
        return content
    return [p.model_dump(exclude={"width", "height"}, exclude_none=True) for p in content]


def map_content_text(content: Content, fn: Callable[[str], str]) -> Content:
    """The content with `fn` applied to its text (each text part), images and videos kept:
    how redaction reaches a message with parts."""
    if isinstance(content, str):
        return fn(content)
    return tuple(TextPart(text=fn(p.text)) if isinstance(p, TextPart) else p for p in content)


def loggable_content(content: Content | None) -> str | list[dict[str, Any]] | None:
    """The content for logs, traces and records: parts as OpenAI dicts, a `data:` URL cut to
    its type and size (an image's bytes never go to a log)."""
    if content is None or isinstance(content, str):
        return content
    out = parts_to_openai(content)
    assert isinstance(out, list)
    for d in out:
        ref = d.get("image_url")
        if isinstance(ref, dict) and str(ref.get("url", "")).startswith("data:"):
            url = ref["url"]
            head = url.split(",", 1)[0]
            ref["url"] = f"{head},<{len(url) - len(head) - 1} base64 characters>"
    return out
