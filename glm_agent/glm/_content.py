"""Message content → prompt text, with the image / video / audio placeholders of each template.

Messages carry plain strings today; these functions also take OpenAI-style lists of content
parts, written exactly as the official templates write them (tested against the templates), so
image input is a matter of passing parts through. The placeholders are single tokens that the
model's processor later repeats once per merged image patch:

- GLM-4.1V-Thinking (`glm-4.1v-thinking.jinja`): user parts only; `{"type": "video"}` or any
  part with a `video` key → `<|begin_of_video|><|video|><|end_of_video|>`; `{"type": "image"}`
  or an `image` key → `<|begin_of_image|><|image|><|end_of_image|>`; `text` parts → their text;
  everything else (OpenAI's `image_url` / `video_url` parts included) → nothing, so a server
  must turn `image_url` into `{"type": "image"}` first (vLLM and transformers' processors do).
- GLM-5.3-Flash (`glm-5.3-flash.jinja`): every role; `image` / `image_url` → the image
  placeholder, `video` / `video_url` → the video one, `audio` / `audio_url` / `input_audio` →
  `<|begin_of_audio|><|end_of_audio|>`; `text` parts and bare strings → their text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "AUDIO_PLACEHOLDER",
    "IMAGE_PLACEHOLDER",
    "VIDEO_PLACEHOLDER",
    "Content",
    "glm41v_user_text",
    "glm53_text",
]

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
