"""Prompt rendering for GLM-4.1V-Thinking (`glm41v`), byte for byte `glm-4.1v-thinking.jinja`.

`[gMASK]<sop>`, then `<|system|>\\n{content}`, `<|user|>\\n{content}` and
`<|assistant|>\\n{content}` turns; the generation prompt is `<|assistant|>\\n`. The template has
no tools, no tool role and no thinking switch: the model always answers
`<think>…</think><answer>…</answer>`, and past turns are written with their content only
(reasoning is not sent back). User content may be content parts (see
`_content.glm41v_user_text` for the image / video placeholders).
"""

from __future__ import annotations

from collections.abc import Sequence

from glm_agent.glm._content import glm41v_user_text, template_parts
from glm_agent.glm._render_glm4 import check_no_tools
from glm_agent.messages import AssistantMessage, Message, SystemMessage, ToolDefinition, UserMessage

__all__ = ["render_glm41v"]


def render_glm41v(
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition] = (),
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The GLM-4.1V-Thinking prompt.

    Raises:
        UserError: tools, tool calls or tool results were given (the template has none).
    """
    check_no_tools("glm41v", messages, tools)
    out = ["[gMASK]<sop>"]
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append(f"<|system|>\n{m.content}")
        elif isinstance(m, UserMessage):
            out.append(f"<|user|>\n{glm41v_user_text(template_parts(m.content, 'typed'))}")
        elif isinstance(m, AssistantMessage):
            out.append(f"<|assistant|>\n{m.content or ''}")
    if add_generation_prompt:
        out.append("<|assistant|>\n")
    return "".join(out)
