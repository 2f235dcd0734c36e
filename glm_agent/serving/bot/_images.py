"""Photos customers send: checked against the bot's limits, kept with the conversation's session,
and told to the customer in their language when one cannot be taken.

A photo reaches the support pipeline the way text does (`BotCore.handle` gets a `UserMessage`
with image parts, whichever door it came through). Before anything else, each photo is checked
(`ImagesConfig`), stored with the conversation's session (`SessionStore.put_media`) and replaced
by its `media:<sha256>` reference: the event log, the session and every later turn carry only
the reference; the model gets the bytes for the turns it is sent, the console and the widget
fetch them by reference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from glm_agent.exceptions import MediaError
from glm_agent.media import MediaLimits, check_image, media_ref, parse_data_url, ref_digest
from glm_agent.memory import SessionStore
from glm_agent.messages import ImagePart, ImageURL, MediaPart, UserMessage
from glm_agent.serving.bot._config import ImagesConfig

__all__ = ["accepts_images", "image_problem", "keep_images"]

_TYPES = "JPEG, PNG, WebP, GIF"


def accepts_images(config: ImagesConfig, model: Any) -> bool:
    """Whether the bot takes photos: as configured, else when its model reads images."""
    if config.enabled is not None:
        return config.enabled
    reads = getattr(model, "media", None)
    return reads is None or "image" in reads


def image_problem(code: str, lang: str, config: ImagesConfig) -> str:
    """What the customer reads when a photo cannot be taken (by `MediaError.code`)."""
    mb = _size(config.max_bytes)
    n = config.max_per_message
    texts = {
        "model_without_vision": (
            "抱歉，我暂时无法查看图片，请用文字描述您的问题。",
            "Sorry, I can't look at photos here. Please describe the problem in words.",
        ),
        "image_too_large": (
            f"图片太大了（最大 {mb}），请换一张小一些的图片。",
            f"That photo is too large (the limit is {mb}). Please send a smaller one.",
        ),
        "unsupported_media_type": (
            f"只能发送 {_TYPES} 格式的图片。",
            f"Only {_TYPES} photos can be sent.",
        ),
        "too_many_images": (
            f"一次最多发送 {n} 张图片。",
            f"You can send up to {n} photos at a time.",
        ),
        "image_link": (
            "请直接上传图片，而不是发送图片链接。",
            "Please upload the photo itself rather than a link to it.",
        ),
        "video": ("抱歉，暂时不支持发送视频。", "Sorry, videos can't be sent here."),
    }
    zh, en = texts.get(
        code,
        ("这张图片无法打开，请换一张试试。", "That photo could not be opened. Please try another."),
    )
    return en if lang == "en" else zh


def _size(n: int) -> str:
    """A size as a customer reads it: `2 MB`, `1.5 MB`, `500 KB`."""
    if n >= 2**20:
        return f"{round(n / 2**20, 1):g} MB"
    return f"{max(1, round(n / 1024))} KB"


def _refuse(code: str, lang: str, config: ImagesConfig) -> MediaError:
    return MediaError(image_problem(code, lang, config), code=code, param="images")


async def keep_images(
    store: SessionStore,
    tenant: str,
    session_id: str,
    message: UserMessage,
    *,
    config: ImagesConfig,
    model: Any,
    lang: str,
) -> tuple[UserMessage, list[dict[str, Any]]]:
    """The message with its photos stored and referred to by `media:<sha256>`, and the photos'
    descriptions for the event log (`id`, `width`, `height`).

    Raises:
        MediaError: a photo the bot does not take; its message is the customer's sentence.
    """
    media: tuple[MediaPart, ...] = message.media
    if not media:
        return message, []
    if not accepts_images(config, model):
        raise _refuse("model_without_vision", lang, config)
    if len(media) > config.max_per_message:
        raise _refuse("too_many_images", lang, config)
    limits = replace(MediaLimits(), max_bytes=config.max_bytes)
    parts: list[Any] = []
    shown: list[dict[str, Any]] = []
    for p in message.content:
        if isinstance(p, ImagePart):
            if ref_digest(p.url) is None and not p.url.startswith("data:"):
                raise _refuse("image_link", lang, config)
            if p.url.startswith("data:"):
                try:
                    data = parse_data_url(p.url)[1]
                    check_image(data, limits)
                    info = await store.put_media(tenant, session_id, data)
                except MediaError as e:
                    raise _refuse(e.code or "invalid_image", lang, config) from None
                p = ImagePart(
                    image_url=ImageURL(url=media_ref(info.sha256)),
                    width=info.width,
                    height=info.height,
                )
            shown.append({"id": ref_digest(p.url), "width": p.width, "height": p.height})
        elif not isinstance(p, str) and p.type == "video_url":
            raise _refuse("video", lang, config)
        parts.append(p)
    return UserMessage(content=tuple(parts)), shown
