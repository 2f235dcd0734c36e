"""What `LocalGLM` adds for a vision checkpoint: its image processor, the images of a
conversation in prompt order, and their token counts by that processor."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glm_agent.exceptions import ConfigError, MediaError
from glm_agent.media import parse_data_url
from glm_agent.messages import ImagePart, MediaPart, Message, ToolMessage, UserMessage

__all__ = ["conversation_images", "image_processor_for", "image_token_count", "image_token_id"]

log = logging.getLogger("glm_agent.models.local")


def image_processor_for(root: Path) -> tuple[Any, str]:
    """The checkpoint's image processor, and where it came from.

    `AutoProcessor` first (the checkpoint's whole processor); transformers' GLM-V processors
    also build a video processor, which needs torchvision: without it, `AutoImageProcessor`
    reads the same `preprocessor_config.json` (Pillow backend). Videos are not read locally.

    Raises:
        ConfigError: the checkpoint has no image processor configuration.
    """
    from transformers import AutoImageProcessor, AutoProcessor

    auto: Any = AutoProcessor  # untyped classmethods
    images: Any = AutoImageProcessor
    try:
        processor = auto.from_pretrained(root)
        return processor.image_processor, "AutoProcessor"
    except ImportError as e:  # torchvision, for the video processor
        log.info("%s: AutoProcessor unavailable (%s); using AutoImageProcessor", root, e)
    except (OSError, ValueError, AttributeError) as e:
        log.info("%s: AutoProcessor failed (%s); using AutoImageProcessor", root, e)
    try:
        return images.from_pretrained(root), "AutoImageProcessor"
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"no image processor: {e}", path=str(root / "preprocessor_config.json")
        ) from None


def image_token_id(tokenizer: Any, config: Any, root: Path) -> int:
    """The id of `<|image|>`, checked to agree between the tokenizer and the model config.

    Raises:
        ConfigError: the tokenizer lacks `<|image|>`, or it disagrees with the config.
    """
    expected = int(config.image_token_id)
    found = tokenizer.special_tokens.get("<|image|>")
    if found != expected:
        raise ConfigError(
            f"the tokenizer's <|image|> is {found}, the model's image_token_id {expected}",
            path=str(root),
            key="image_token_id",
        )
    return expected


def image_token_count(processor: Any, part: MediaPart) -> int:
    """An image's prompt tokens by the checkpoint's processor (placeholders included); an
    image of unknown size counts as 1024x1024."""
    if not isinstance(part, ImagePart):
        return part.estimated_tokens()
    w, h = part.width or 1024, part.height or 1024
    patches = int(processor.get_number_of_image_patches(h, w, {}))
    return patches // int(processor.merge_size) ** 2 + 2


def conversation_images(messages: Sequence[Message]) -> list[bytes]:
    """The images of user and tool messages in the order the prompt places them.

    Raises:
        MediaError: a video (not read locally), or an image given by http(s) URL (LocalGLM
            downloads nothing).
    """
    out: list[bytes] = []
    for m in messages:
        if not isinstance(m, UserMessage | ToolMessage):
            continue
        for p in m.media:
            if not isinstance(p, ImagePart):
                raise MediaError(
                    "LocalGLM reads no videos (transformers' GLM-V video processor needs "
                    "torchvision, and glm-agent decodes no video); send frames as images",
                    code="unsupported_media_type",
                )
            if not p.url.startswith("data:"):
                raise MediaError(
                    f"LocalGLM reads images from data: URLs, got {p.url[:40]!r}: it downloads "
                    "nothing (fetch the image and send its bytes; a session's media: images "
                    "are resolved by its ConversationMemory)",
                    code="image_link",
                )
            out.append(parse_data_url(p.url)[1])
    return out
