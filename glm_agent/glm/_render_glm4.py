"""Prompt rendering for glm-4-9b-chat (`glm4`) and GLM-4-0414 / GLM-Z1 (`glm4-0414`).

glm4 follows `glm-4-9b-chat.jinja` with the message mapping of conformance README §4: a tools
item first (persona, `# 可用工具`, one `## name` block per tool), assistant tool calls as one
`<|assistant|>{name}\\n{arguments}` turn each (arguments verbatim, the message's own content
dropped), tool results as `<|observation|>` turns, empty turns omitted.

glm4-0414 is UNVERIFIED: no GLM-4-9B/32B-0414 or GLM-Z1 template is in the reference set. It
follows the documented shape of GLM-4-32B-0414's template: the tools block without persona
(`<|system|>\\n# 可用工具` then the same `## name` blocks), then every system message, then the
other turns in order, each showing only its text after the last `</think>`, stripped (so GLM-Z1
reasoning is never rendered back); a tool call is `<|assistant|>{name} \\n{arguments}` (note the
space). The one verbatim 0414-family template found, GLM-Z1-Rumination-32B-0414's (README),
confirms that message loop and the `<|assistant|>` generation prompt; it cannot confirm the
rest, because Rumination ignores tools and system messages. Still missing to verify: the
tools-block bytes, where system turns go, and GLM-Z1's generation prompt (third-party copies
say `<|assistant|>\\n<think>`, which would make Z1 a format of its own).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from glm_agent.exceptions import UserError
from glm_agent.glm._builtin import (
    BROWSER_BLOCK,
    BROWSER_TOOL,
    PYTHON_BLOCK,
    PYTHON_TOOL,
    encode_builtin,
)
from glm_agent.glm._content import text_only
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)

__all__ = ["GLM4_PERSONA", "GLM4_PERSONA_2024_06", "render_glm4", "render_glm4_0414"]

GLM4_PERSONA = (
    "你是一个名为 GLM-4 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，"
    "你的任务是针对用户的问题和要求提供适当的答复和支持。"
)
"""The persona of glm-4-9b-chat's current template."""
GLM4_PERSONA_2024_06 = GLM4_PERSONA.replace("名为 GLM-4 的", "名为 ChatGLM 的")
"""The June-2024 persona ("ChatGLM")."""

_CALL_HINT = "\n在调用上述函数时，请使用 Json 格式表示调用的参数。"


def _tool_blocks(tools: Sequence[ToolDefinition], builtins: bool) -> str:
    parts = ["# 可用工具"]
    for t in tools:
        if builtins and t.name == PYTHON_TOOL:
            parts.append(PYTHON_BLOCK)
        elif builtins and t.name == BROWSER_TOOL:
            parts.append(BROWSER_BLOCK)
        else:
            fn = t.to_openai()["function"]
            parts.append(f"\n## {t.name}\n\n{json.dumps(fn, ensure_ascii=False, indent=4)}")
            parts.append(_CALL_HINT)
    return "".join(parts)


def call_body(call: ToolCall, builtins: bool) -> str:
    """What follows the name in a glm4 call turn: the arguments verbatim, or built-in syntax."""
    if builtins and call.name in (PYTHON_TOOL, BROWSER_TOOL):
        try:
            args = json.loads(call.arguments)
        except ValueError:
            args = None
        if isinstance(args, dict):
            body = encode_builtin(call.name, args)
            if body is not None:
                return body
    return call.arguments


def render_glm4(
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition] = (),
    *,
    add_generation_prompt: bool = True,
    persona: str = GLM4_PERSONA,
) -> str:
    """The glm-4-9b-chat prompt for OpenAI-shaped messages (see the module docstring)."""
    names = {t.name for t in tools}
    out = ["[gMASK]<sop>"]
    if tools:
        out.append(f"<|system|>\n{persona}\n\n{_tool_blocks(tools, builtins=True)}")

    def turn(role: str, content: str, meta: str = "") -> None:
        if content:  # the template omits turns with empty content
            out.append(f"<|{role}|>{meta}\n{content}")

    for m in messages:
        if isinstance(m, SystemMessage | UserMessage):
            turn(m.role, text_only(m.content, "glm4"))
        elif isinstance(m, AssistantMessage):
            if m.tool_calls:
                for c in m.tool_calls:
                    turn("assistant", call_body(c, c.name in names), c.name)
            else:
                turn("assistant", m.content or "")
        elif isinstance(m, ToolMessage):
            turn("observation", text_only(m.content, "glm4"))
    if add_generation_prompt:
        out.append("<|assistant|>")
    return "".join(out)


def _visible(content: str) -> str:
    # The 0414 template shows only what follows the last `</think>`, stripped (Z1 history).
    return content.split("</think>")[-1].strip()


def render_glm4_0414(
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition] = (),
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The GLM-4-0414 / GLM-Z1 prompt (UNVERIFIED reconstruction; see the module docstring)."""
    out = ["[gMASK]<sop>"]
    if tools:
        out.append("<|system|>\n" + _tool_blocks(tools, builtins=False))
    out.extend(f"<|system|>\n{m.content}" for m in messages if isinstance(m, SystemMessage))
    for m in messages:
        if isinstance(m, UserMessage):
            out.append(f"<|user|>\n{_visible(text_only(m.content, 'glm4-0414'))}")
        elif isinstance(m, AssistantMessage):
            if m.tool_calls:
                out.extend(f"<|assistant|>{c.name} \n{_visible(c.arguments)}" for c in m.tool_calls)
            else:
                out.append(f"<|assistant|>\n{_visible(m.content or '')}")
        elif isinstance(m, ToolMessage):
            out.append(f"<|observation|>\n{_visible(text_only(m.content, 'glm4-0414'))}")
    if add_generation_prompt:
        out.append("<|assistant|>")
    return "".join(out)


def check_no_tools(
    family: str, messages: Sequence[Message], tools: Sequence[ToolDefinition]
) -> None:
    """Raise when a conversation needs tool support that `family`'s format lacks."""
    if tools:
        raise UserError(f"the {family} format has no tool support; pass no tools")
    for i, m in enumerate(messages):
        if isinstance(m, ToolMessage) or (isinstance(m, AssistantMessage) and m.tool_calls):
            raise UserError(
                f"message {i}: the {family} format has no tool calls or tool results; "
                "formats with tools: glm4, glm4-0414, glm45, glm47, glm5, glm52, glm53"
            )
