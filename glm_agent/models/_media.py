"""What the backends share about images: which models read them, what they cost, and where a
rendered prompt cannot carry them."""

from __future__ import annotations

from collections.abc import Sequence

from glm_agent.exceptions import MediaError, UserError
from glm_agent.messages import MediaPart, Message, ToolMessage, UserMessage

__all__ = ["family_media_tokens", "media_of", "refuse_media_in_prompt"]


def media_of(name: str, model_type: str | None = None) -> tuple[str, ...] | None:
    """What a model reads besides text, by its name (and `model_type`); None for a model that
    is not a GLM glm-agent knows (the server decides)."""
    from glm_agent.glm import facts_for_model

    try:
        return facts_for_model(name, model_type).media
    except UserError:
        return None


def family_media_tokens(name: str, part: MediaPart) -> int:
    """An image's or video's tokens by the processor rule of the GLM family `name` belongs to
    (a family or a model name), else by the generic estimate."""
    from glm_agent.glm import family_for_model, media_tokens

    try:
        counted = media_tokens(family_for_model(name), part)
    except UserError:
        counted = None
    return counted if counted is not None else part.estimated_tokens()


def refuse_media_in_prompt(messages: Sequence[Message]) -> None:
    """Raise when images or videos would go into a raw `/completions` prompt, which carries
    text only.

    Raises:
        MediaError: `media_needs_chat_mode`.
    """
    if any(isinstance(m, UserMessage | ToolMessage) and m.media for m in messages):
        raise MediaError(
            "images and videos go to a served model in chat mode only: completions mode sends "
            "a prompt glm-agent renders, which has no room for the pixels; use mode='chat'",
            code="media_needs_chat_mode",
        )
