"""Prompt rendering for ChatGLM3-6B (`chatglm3`): its HF template, which has no tool support."""

from __future__ import annotations

from collections.abc import Sequence

from glm_agent.glm._content import text_only
from glm_agent.glm._render_glm4 import check_no_tools
from glm_agent.messages import AssistantMessage, Message, ToolDefinition

__all__ = ["render_chatglm3"]


def render_chatglm3(
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition] = (),
    *,
    add_generation_prompt: bool = True,
) -> str:
    """`[gMASK]sop` then `<|role|>\\n {content}` per message (the space is the template's).

    Raises:
        UserError: tools, tool calls or tool results were given.
    """
    check_no_tools("chatglm3", messages, tools)
    out = []
    for i, m in enumerate(messages):
        content = (m.content or "") if isinstance(m, AssistantMessage) else m.content
        content = text_only(content, "chatglm3")
        out.append(f"{'[gMASK]sop' if i == 0 else ''}<|{m.role}|>\n {content}")
    if add_generation_prompt:
        out.append("<|assistant|>")
    return "".join(out)
