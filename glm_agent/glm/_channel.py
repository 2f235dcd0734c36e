"""Text channels of the streaming parser and the rules for what must be held back."""

from __future__ import annotations

from collections.abc import Callable

from glm_agent.glm._facts import STOP_MARKERS
from glm_agent.messages import ModelStreamEvent, ReasoningDelta, TextDelta

__all__ = ["Channel", "hold_from", "reasoning_event", "text_event", "without_partial_tag"]


def hold_from(tail: str, tags: tuple[str, ...]) -> int:
    """Where `tail` may still change meaning: a partial tag or trailing stop markers."""
    n = j = len(tail)
    k = tail.rfind("<", n - 16 if n > 16 else 0)
    if k != -1:
        frag = tail[k:]
        if any(t.startswith(frag) for t in tags) or any(m.startswith(frag) for m in STOP_MARKERS):
            j = k
    while True:
        e = j
        while e > 0 and tail[e - 1].isspace():
            e -= 1
        if e == 0 or tail[e - 1] != ">":
            return j
        for m in STOP_MARKERS:
            if tail.endswith(m, 0, e):
                j = e - len(m)
                break
        else:
            return j


def without_partial_tag(text: str, tags: tuple[str, ...]) -> str:
    """`text` without a trailing proper prefix of one of `tags`."""
    k = text.rfind("<", max(0, len(text) - 16))
    if k != -1 and any(t.startswith(text[k:]) for t in tags):
        return text[:k]
    return text


class Channel:
    """A stripped text channel (content or reasoning) emitted as it becomes certain."""

    __slots__ = ("emitted", "held", "make", "seg_started", "started")

    def __init__(self, make: Callable[[str], ModelStreamEvent]) -> None:
        self.make = make
        self.emitted: list[str] = []
        # Trailing whitespace, inside the text only if more text follows (a list: appending to
        # a long run stays linear).
        self.held: list[str] = []
        self.started = False
        self.seg_started = False

    def new_segment(self) -> None:
        """glm4: the next text is a new segment (stripped, joined with a newline)."""
        self.held = []
        self.seg_started = False

    def push(self, text: str, out: list[ModelStreamEvent]) -> None:
        """Add `text`; emit what is now known to be part of the (stripped) channel text."""
        if not self.seg_started:
            text = text.lstrip()
            if not text:
                return
            self.seg_started = True
            if self.started:
                self.held.insert(0, "\n")
            self.started = True
        if not text:
            return
        body = text.rstrip() if text[-1].isspace() else text
        if not body:
            self.held.append(text)
            return
        piece = "".join(self.held) + body if self.held else body
        self.held = [text[len(body) :]] if len(body) < len(text) else []
        self.emitted.append(piece)
        out.append(self.make(piece))


# Plain constructors: pydantic's model_construct is slower than validating these two fields.
def text_event(s: str) -> ModelStreamEvent:
    return TextDelta(content=s)


def reasoning_event(s: str) -> ModelStreamEvent:
    return ReasoningDelta(content=s)
