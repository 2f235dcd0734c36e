"""A run's prompt → the user's message: text, or text with images, checked once for every door.

`Agent.iter` takes a string, a `UserMessage`, or a list of content parts (ours or OpenAI part
dicts). Here, and only here, an image is checked before a run starts: its size and type
(`MediaLimits`), how many there are, and whether the model reads images at all; a `data:`
image also gets its width and height, which its token count needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from glm_agent._parts import part_from_openai
from glm_agent.exceptions import MediaError, UserError
from glm_agent.media import MediaLimits, check_image, parse_data_url
from glm_agent.messages import (
    ContentPart,
    ImagePart,
    MediaPart,
    Message,
    TextPart,
    ToolMessage,
    UserMessage,
    VideoPart,
    content_text,
)

__all__ = ["Prompt", "check_media", "checked_messages", "user_message"]

Prompt: TypeAlias = str | UserMessage | Sequence[ContentPart | Mapping[str, Any]]
"""What a run takes as the user's message: text, a message, or content parts."""


def _measured(part: ImagePart, limits: MediaLimits) -> ImagePart:
    """A `data:` image checked against `limits`, with its width and height."""
    if not part.url.startswith("data:"):
        return part
    mime, data = parse_data_url(part.url)
    info = check_image(data, limits)
    if not mime.startswith("image/"):
        raise MediaError(f"a data: URL of type {mime} is not an image", code="invalid_image")
    return part.model_copy(update={"width": info.width, "height": info.height})


def check_media(media: Sequence[MediaPart], reads: tuple[str, ...] | None, model: str) -> None:
    """Refuse images or videos a model does not read (`reads`: the model's `media`).

    Raises:
        MediaError: `model_without_vision`, naming the model and what it reads.
    """
    if reads is None:
        return
    for part in media:
        kind = "image" if isinstance(part, ImagePart) else "video"
        if kind not in reads:
            takes = ", ".join(reads) if reads else "text only"
            raise MediaError(
                f"the model {model} does not read {kind}s (it reads: {takes}); use a vision "
                "model (GLM-4.1V-Thinking, GLM-4.5V, GLM-4.6V, GLM-5.3-Flash) or send text",
                code="model_without_vision",
            )


def user_message(
    prompt: Prompt, limits: MediaLimits, reads: tuple[str, ...] | None, model: str
) -> UserMessage:
    """The user's message for `prompt`, its images checked.

    Args:
        prompt: Text, a `UserMessage`, or content parts (ours or OpenAI dicts).
        limits: Size, type and count limits for images.
        reads: What the model reads besides text (`ChatModel.media`; None: not known).
        model: The model's name, for errors.

    Raises:
        MediaError: too many images, one too large or of a type not taken, or a model that
            reads none.
        UserError: a malformed part (an unknown type, a bad URL).
    """
    if isinstance(prompt, str):
        return UserMessage(content=prompt)
    if isinstance(prompt, UserMessage):
        content = prompt.content
    else:
        try:
            content = tuple(
                p
                if isinstance(p, TextPart | ImagePart | VideoPart)
                else part_from_openai(p, "prompt")
                for p in prompt
            )
        except ValueError as e:  # pydantic's ValidationError too
            raise UserError(f"bad prompt: {e}") from None
    if isinstance(content, str) or not any(isinstance(p, MediaPart) for p in content):
        return UserMessage(content=content_text(content))
    images = sum(isinstance(p, ImagePart) for p in content)
    if images > limits.max_images:
        raise MediaError(
            f"{images} images in one message; at most {limits.max_images} are taken",
            code="too_many_images",
        )
    parts = tuple(_measured(p, limits) if isinstance(p, ImagePart) else p for p in content)
    check_media([p for p in parts if isinstance(p, ImagePart | VideoPart)], reads, model)
    return UserMessage(content=parts)


def checked_messages(
    messages: Sequence[Message], limits: MediaLimits, reads: tuple[str, ...] | None, model: str
) -> list[Message]:
    """A conversation a client sent (the OpenAI-compatible API), its images checked as a
    prompt's are: limits, count per message, what the model reads; `data:` images measured.

    Raises:
        MediaError: as `user_message`.
    """
    out: list[Message] = []
    for m in messages:
        if isinstance(m, UserMessage):
            m = user_message(m, limits, reads, model)
        elif isinstance(m, ToolMessage) and m.media:
            measured = user_message(UserMessage(content=m.content), limits, reads, model)
            m = m.model_copy(update={"content": measured.content})
        out.append(m)
    return out
