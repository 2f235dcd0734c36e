"""Prompt rendering for the XML tool-call formats: GLM-4.5 / 4.6 (`glm45`), GLM-4.7 (`glm47`).

Follows `glm-4.6.jinja` and `glm-4.7-flash.jinja` with vLLM's message mapping (conformance
README §4): tools as one JSON line each, string argument values raw and others as JSON,
reasoning kept only after the last user turn (glm47: also everywhere when `clear_thinking`
is false), `<|observation|>` once per run of tool results. glm45 is newline-separated; glm47
is compact and its generation prompt opens (`<think>`) or closes (`</think>`) thinking.

Images and videos: glm45 also stands for GLM-4.5V / 4.6V and writes their placeholders in user
turns and tool results (`_content.glm45v_text`, UNVERIFIED: their template is not saved);
glm47 has none and refuses them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from glm_agent.exceptions import UserError
from glm_agent.glm._content import glm45v_text, glm45v_tool_text, text_only
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)

__all__ = ["call_arguments", "render_call", "render_xml", "split_reasoning_history"]

_TOOLS_HEAD = (
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query."
    "\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
_FORMAT_45 = (
    "</tools>\n\nFor each function call, output the function name and arguments within the "
    "following XML format:\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n"
    "<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}</arg_key>\n"
    "<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>"
)
_FORMAT_47 = (
    "</tools>\n\nFor each function call, output the function name and arguments within the "
    "following XML format:\n<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key>"
    "<arg_value>{arg-value-1}</arg_value><arg_key>{arg-key-2}</arg_key>"
    "<arg_value>{arg-value-2}</arg_value>...</tool_call>"
)


def call_arguments(call: ToolCall) -> dict[str, Any] | str:
    """A call's arguments as the mapping the template iterates (`""` → `{}`), or, for text that
    is not JSON at all (a call whose arguments the parser could not read intact), that text.

    Raises:
        UserError: the arguments are JSON but not an object.
    """
    if not call.arguments.strip():
        return {}
    try:
        args = json.loads(call.arguments)
    except ValueError:
        return call.arguments
    if not isinstance(args, dict):
        raise UserError(
            f"tool call {call.name!r} ({call.id}): arguments must be a JSON object to render, "
            f"got {call.arguments[:80]!r}"
        )
    return args


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def render_call(call: ToolCall, nl: str) -> str:
    """One `<tool_call>` block (`nl`: "\n" for GLM-4.5's layout, "" for the compact one).

    A call whose arguments are raw text (see `call_arguments`) is written back as the model
    wrote it, so the model sees its own mistake next to the error it gets for it.
    """
    args = call_arguments(call)
    if isinstance(args, str):
        return f"{nl}<tool_call>{call.name}{args}</tool_call>"
    pairs = "".join(
        f"<arg_key>{k}</arg_key>{nl}<arg_value>{_value(v)}</arg_value>{nl}" for k, v in args.items()
    )
    return f"{nl}<tool_call>{call.name}{nl}{pairs}</tool_call>"


def split_reasoning_history(m: AssistantMessage) -> tuple[str, str]:
    """(reasoning, content) of a past turn the way the GLM-4.7 template splits them."""
    return _split_reasoning(m)


def _split_reasoning(m: AssistantMessage) -> tuple[str, str]:
    content = m.content or ""
    if m.reasoning is not None:
        return m.reasoning, content
    if "</think>" in content:
        reasoning = content.split("</think>")[0].rstrip("\n").split("<think>")[-1].lstrip("\n")
        return reasoning, content.split("</think>")[-1].lstrip("\n")
    return "", content


def render_xml(
    messages: Sequence[Message],
    tools: Sequence[ToolDefinition] = (),
    *,
    compact: bool,
    add_generation_prompt: bool = True,
    enable_thinking: bool | None = None,
    clear_thinking: bool | None = None,
) -> str:
    """The GLM-4.5/4.6 (`compact=False`) or GLM-4.7 (`compact=True`) prompt.

    `enable_thinking` / `clear_thinking` None means "not passed to the template".
    """
    nl = "" if compact else "\n"
    out = ["[gMASK]<sop>"]
    if tools:
        out.append(_TOOLS_HEAD)
        out.extend(json.dumps(t.to_openai(), ensure_ascii=False) + "\n" for t in tools)
        out.append(_FORMAT_47 if compact else _FORMAT_45)
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, UserMessage)), default=-1)
    keep_all = compact and clear_thinking is not None and not clear_thinking
    for i, m in enumerate(messages):
        if isinstance(m, UserMessage):
            text = text_only(m.content, "glm47") if compact else glm45v_text(m.content)
            nothink = (
                not compact
                and enable_thinking is not None
                and not enable_thinking
                and not text.endswith("/nothink")
            )
            out.append(f"<|user|>{nl}{text}{'/nothink' if nothink else ''}")
        elif isinstance(m, AssistantMessage):
            reasoning, content = _split_reasoning(m)
            out.append("<|assistant|>")
            if (keep_all or i > last_user) and reasoning:
                out.append(f"{nl}<think>{reasoning.strip()}</think>")
            else:
                out.append(f"{nl}<think></think>" if not compact else "</think>")
            if content.strip():
                out.append(nl + content.strip())
            out.extend(render_call(c, nl) for c in m.tool_calls)
        elif isinstance(m, ToolMessage):
            if i == 0 or not isinstance(messages[i - 1], ToolMessage):
                out.append("<|observation|>")
            result = text_only(m.content, "glm47") if compact else glm45v_tool_text(m.content)
            out.append(f"{nl}<tool_response>{nl}{result}{nl}</tool_response>")
        elif isinstance(m, SystemMessage):
            out.append(f"<|system|>{nl}{m.content}")
    if add_generation_prompt:
        out.append("<|assistant|>")
        thinking_off = enable_thinking is not None and not enable_thinking
        if compact:
            out.append("</think>" if thinking_off else "<think>")
        elif thinking_off:
            out.append("\n<think></think>")
    return "".join(out)
