"""Prompt rendering for the GLM-5.x line: GLM-5 / 5.1 (`glm5`), GLM-5.2 (`glm52`), GLM-5.3 and
GLM-5.3-Flash (`glm53`).

All three write GLM-4.7's compact tool calls, list each tool's `function` object (without
`defer_loading` / `strict`; `defer_loading: true` tools left out) and separate turns by role tokens
alone. They differ in the thinking controls:

| | glm5 | glm52 | glm53 |
| --- | --- | --- | --- |
| `Reasoning Effort:` system line | no | `Max`, `High` | `Max`, `High`, `Low` |
| `enable_thinking=False` | `</think>` prompt | `</think>` prompt | ignored |
| past reasoning, by default | cleared | cleared | kept (`clear_thinking=True` clears) |
| a cleared / empty past turn | `</think>` | `<think></think>` | `<think></think>` |
| reasoning text | stripped | stripped | as given |
| a run of tool results | in order | in order | in the calls' order when every id matches |
| images and videos | refused | refused | placeholders, in every role |

glm53 follows `glm-5.3-flash.jinja` byte for byte (tested). glm5 and glm52 are UNVERIFIED
reconstructions from ../shared/glm/README.md (fw-ai/cookbook's GLM-5.1 renderer, zai-org/GLM-5's
README); a checkpoint's own template is compared at load (`check_chat_template`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from glm_agent.glm._content import glm53_text, template_parts, text_only
from glm_agent.glm._render_xml import render_call, split_reasoning_history
from glm_agent.messages import (
    AssistantMessage,
    Content,
    Message,
    SystemMessage,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)

__all__ = ["GLM5_VARIANTS", "Glm5Variant", "render_glm5"]

_TOOLS_HEAD = (
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query."
    "\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
_FORMAT = (
    "</tools>\n\nFor each function call, output the function name and arguments within the "
    "following XML format:\n<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key>"
    "<arg_value>{arg-value-1}</arg_value><arg_key>{arg-key-2}</arg_key>"
    "<arg_value>{arg-value-2}</arg_value>...</tool_call>"
)


@dataclass(frozen=True)
class Glm5Variant:
    """What sets one GLM-5.x template apart (see the module docstring's table)."""

    efforts: tuple[str, ...] | None
    """Effort values the `Reasoning Effort:` line accepts besides `max`; None: no such line."""
    thinking_switch: bool
    """`enable_thinking=False` closes thinking in the generation prompt."""
    keep_reasoning: bool
    """Past reasoning is kept unless `clear_thinking=True` (else cleared unless False)."""
    cleared: str
    """What a past turn without (kept) reasoning opens with."""
    strip_reasoning: bool
    """Reasoning text is stripped of surrounding whitespace."""
    sort_results: bool
    """A run of tool results is written in the order of the calls it answers."""
    family: str = "glm53"
    """The family name (errors name it)."""

    def text(self, content: Content) -> str:
        """A message's visible text: placeholders for images (glm53), else text only."""
        if self.family == "glm53":
            return glm53_text(template_parts(content, "openai"))
        return text_only(content, self.family)


GLM5_VARIANTS: dict[str, Glm5Variant] = {
    "glm5": Glm5Variant(None, True, False, "</think>", True, False, "glm5"),
    "glm52": Glm5Variant(("high",), True, False, "<think></think>", True, False, "glm52"),
    "glm53": Glm5Variant(("low", "high"), False, True, "<think></think>", False, True, "glm53"),
}


def _reasoning(m: AssistantMessage, v: Glm5Variant) -> tuple[str | None, str]:
    """(reasoning or None when there is none, content) of an assistant turn."""
    if v.strip_reasoning:
        reasoning, content = split_reasoning_history(m)
        return (reasoning or None), content
    content = glm53_text(m.content or "")
    if m.reasoning is not None:
        return m.reasoning, content
    if "</think>" in content:
        return content.split("</think>")[0].split("<think>")[-1], content.split("</think>")[-1]
    return None, content


def _result_order(messages: Sequence[Message], start: int, end: int) -> list[int]:
    """The order GLM-5.3 writes the tool results `messages[start:end]` in.

    They follow the preceding turn's calls when every result and every call has an id, the ids
    are unique on both sides and every result answers one of the calls; else they keep theirs.
    """
    block = list(range(start, end))
    prev = messages[start - 1] if start > 0 else None
    if not isinstance(prev, AssistantMessage) or not prev.tool_calls:
        return block
    call_ids = [c.id for c in prev.tool_calls]
    ids = [m.tool_call_id for m in messages[start:end] if isinstance(m, ToolMessage)]
    if (
        not all(call_ids)
        or len(set(call_ids)) != len(call_ids)
        or not all(ids)
        or len(set(ids)) != len(ids)
        or not set(ids) <= set(call_ids)
    ):
        return block
    position = {m.tool_call_id: i for i, m in zip(block, messages[start:end], strict=True)}  # type: ignore[union-attr]
    return [position[cid] for cid in call_ids if cid in position]


def render_glm5(
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition] = (),
    *,
    variant: Glm5Variant,
    add_generation_prompt: bool = True,
    enable_thinking: bool | None = None,
    clear_thinking: bool | None = None,
    reasoning_effort: str | None = None,
) -> str:
    """A GLM-5.x prompt (see the module docstring).

    Args:
        messages: The conversation.
        tools: Tools the model may call.
        variant: Which template (`GLM5_VARIANTS[family]`).
        add_generation_prompt: End with the assistant turn opener.
        enable_thinking: False turns thinking off where the template lets it.
        clear_thinking: True clears past reasoning, False keeps it (None: the template's default).
        reasoning_effort: `max`, `high` (and `low` for glm53); others mean `max`.
    """
    v = variant
    out = ["[gMASK]<sop>"]
    if v.efforts is not None:
        effort = reasoning_effort if reasoning_effort in v.efforts else "max"
        out.append(f"<|system|>Reasoning Effort: {effort.capitalize()}")
    if tools:
        out.append(_TOOLS_HEAD)
        out.extend(json.dumps(t.to_openai()["function"], ensure_ascii=False) + "\n" for t in tools)
        out.append(_FORMAT)
    thinking_off = v.thinking_switch and enable_thinking is False
    keep_all = (clear_thinking is not True) if v.keep_reasoning else (clear_thinking is False)
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, UserMessage)), default=-1)
    i = 0
    while i < len(messages):
        m = messages[i]
        if isinstance(m, UserMessage):
            out.append(f"<|user|>{v.text(m.content)}")
        elif isinstance(m, SystemMessage):
            out.append(f"<|system|>{v.text(m.content)}")
        elif isinstance(m, AssistantMessage):
            reasoning, content = _reasoning(m, v)
            out.append("<|assistant|>")
            if (keep_all or i > last_user) and reasoning is not None:
                text = reasoning.strip() if v.strip_reasoning else reasoning
                out.append(f"<think>{text}</think>")
            elif i > last_user:
                out.append("</think>" if thinking_off else "<think></think>")
            else:
                out.append(v.cleared)
            if content.strip():
                out.append(content.strip())
            out.extend(render_call(c, "") for c in m.tool_calls)
        elif isinstance(m, ToolMessage):
            end = i
            while end < len(messages) and isinstance(messages[end], ToolMessage):
                end += 1
            order = _result_order(messages, i, end) if v.sort_results else range(i, end)
            out.append("<|observation|>")
            for k in order:
                result = messages[k]
                assert isinstance(result, ToolMessage)
                out.append(f"<tool_response>{v.text(result.content)}</tool_response>")
            i = end
            continue
        i += 1
    if add_generation_prompt:
        out.append("<|assistant|>" + ("</think>" if thinking_off else "<think>"))
    return "".join(out)
