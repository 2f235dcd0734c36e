"""Message content → prompt text, with the image / video / audio placeholders of each template.

A message's content is a string or content parts (`glm_agent.messages.ContentPart`); the
functions below write template-style part lists exactly as the official templates write them
(tested against the templates). `template_parts` turns our parts into what a template reads.
The placeholders are single tokens that the model's processor later repeats once per merged
image patch:

- GLM-4.1V-Thinking (`glm-4.1v-thinking.jinja`): user parts only; `{"type": "video"}` or any
  part with a `video` key → `<|begin_of_video|><|video|><|end_of_video|>`; `{"type": "image"}`
  or an `image` key → `<|begin_of_image|><|image|><|end_of_image|>`; `text` parts → their text;
  everything else (OpenAI's `image_url` / `video_url` parts included) → nothing, so a server
  must turn `image_url` into `{"type": "image"}` first (vLLM and transformers' processors do).
- GLM-5.3-Flash (`glm-5.3-flash.jinja`): every role; `image` / `image_url` → the image
  placeholder, `video` / `video_url` → the video one, `audio` / `audio_url` / `input_audio` →
  `<|begin_of_audio|><|end_of_audio|>`; `text` parts and bare strings → their text.
- GLM-4.5V / GLM-4.6V (family `glm45`; their template is not saved, UNVERIFIED): user turns as
  GLM-4.1V; a tool result's parts inside one `<tool_response>` (`text` → its text, `image` /
  `image_url` → the image placeholder, `video` / `video_url` → the video one), following the
  GLM-V-style template GLM-OCR ships (a third-party copy, a lead rather than a spec).

Families whose templates have no placeholders (glm4, glm4-0414, chatglm3, glm47, glm5, glm52)
refuse images with a `MediaError` (`text_only`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

from glm_agent.exceptions import MediaError
from glm_agent.messages import Content as MessageContent
from glm_agent.messages import (
    ImagePart,
    TextPart,
    VideoPart,
    content_media,
    content_text,
)

__all__ = [
    "AUDIO_PLACEHOLDER",
    "IMAGE_PLACEHOLDER",
    "VIDEO_PLACEHOLDER",
    "VISION_FAMILIES",
    "Content",
    "glm41v_user_text",
    "glm45v_text",
    "glm45v_tool_text",
    "glm53_text",
    "template_parts",
    "text_only",
]

VISION_FAMILIES: dict[str, str] = {
    "glm41v": "GLM-4.1V-Thinking",
    "glm45": "GLM-4.5V / GLM-4.6V",
    "glm53": "GLM-5.3-Flash",
}
"""Families whose prompts carry images and videos, with the models that read them."""

IMAGE_PLACEHOLDER = "<|begin_of_image|><|image|><|end_of_image|>"
VIDEO_PLACEHOLDER = "<|begin_of_video|><|video|><|end_of_video|>"
AUDIO_PLACEHOLDER = "<|begin_of_audio|><|end_of_audio|>"

Content: TypeAlias = str | Sequence[Mapping[str, Any] | str]
"""A message's content: a string, or OpenAI-style content parts."""


def _jinja_str(value: Any) -> str:
    # How `{{ value }}` prints: None as "None", a missing key as "".
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else str(value)


def glm41v_user_text(content: Content) -> str:
    """A GLM-4.1V-Thinking user turn's text (the part after `<|user|>\\n`)."""
    if isinstance(content, str):
        return content
    out: list[str] = []
    for item in content:
        if not isinstance(item, Mapping):
            continue  # the template reads `item.type` of a string: undefined, nothing printed
        kind = item.get("type")
        if kind == "video" or "video" in item:
            out.append(VIDEO_PLACEHOLDER)
        elif kind == "image" or "image" in item:
            out.append(IMAGE_PLACEHOLDER)
        elif kind == "text":
            out.append(_jinja_str(item["text"]) if "text" in item else "")
    return "".join(out)


def glm53_text(content: Content | None) -> str:
    """GLM-5.3-Flash's `visible_text` of any message's content."""
    if content is None:
        return "None"
    if isinstance(content, str):
        return content
    out: list[str] = []
    for item in content:
        if isinstance(item, str):
            out.append(item)
            continue
        kind = item.get("type")
        if kind == "text":
            out.append(_jinja_str(item["text"]) if "text" in item else "")
        elif kind in ("image", "image_url"):
            out.append(IMAGE_PLACEHOLDER)
        elif kind in ("video", "video_url"):
            out.append(VIDEO_PLACEHOLDER)
        elif kind in ("audio", "audio_url", "input_audio"):
            out.append(AUDIO_PLACEHOLDER)
    return "".join(out)


def template_parts(
    content: MessageContent, style: Literal["openai", "typed"]
) -> str | list[dict[str, Any]]:
    """A message's content as a chat template reads it.

    Args:
        content: A string or our content parts.
        style: `openai`: parts as sent (`image_url` / `video_url`), as GLM-5.3-Flash's template
            reads them; `typed`: `{"type": "image"}` / `{"type": "video"}`, as vLLM and
            transformers' processors hand parts to the GLM-V templates.
    """
    if isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        elif style == "typed":
            out.append({"type": "image" if isinstance(p, ImagePart) else "video"})
        else:
            out.append(p.model_dump(exclude={"width", "height"}, exclude_none=True))
    return out


def text_only(content: MessageContent | None, family: str) -> str:
    """The text of a content, for a family whose prompt has no image or video placeholders.

    Raises:
        MediaError: the content holds images or videos (`model_without_vision`).
    """
    media = content_media(content)
    if media:
        kind = "videos" if all(isinstance(m, VideoPart) for m in media) else "images"
        vision = "; ".join(f"{f} ({names})" for f, names in VISION_FAMILIES.items())
        raise MediaError(
            f"the {family} format takes no {kind}: its models read text only; formats that "
            f"take images: {vision}",
            code="model_without_vision",
        )
    return content_text(content)


def glm45v_text(content: MessageContent) -> str:
    """A GLM-4.5V / 4.6V user or system turn's text (UNVERIFIED; see the module docstring)."""
    parts = template_parts(content, "typed")
    return parts if isinstance(parts, str) else glm41v_user_text(parts)


def glm45v_tool_text(content: MessageContent) -> str:
    """What a GLM-4.5V / 4.6V tool result writes between its `<tool_response>` lines."""
    if isinstance(content, str):
        return content
    out: list[str] = []
    for p in content:
        if isinstance(p, TextPart):
            out.append(p.text)
        else:
            out.append(IMAGE_PLACEHOLDER if isinstance(p, ImagePart) else VIDEO_PLACEHOLDER)
    return "".join(out)
