"""Check a checkpoint's own `chat_template` against our renderer of its family.

The template is rendered the way transformers renders chat templates (Jinja2 immutable
sandbox, `trim_blocks`, `lstrip_blocks`, `loopcontrols`, `tojson` = `json.dumps` with
`ensure_ascii=False`) on a few probe conversations, after the OpenAI → template message mapping
of conformance README §4; each disagreement is described. jinja2 is imported only here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from glm_agent.exceptions import MissingDependencyError
from glm_agent.glm._builtin import BROWSER_TOOL, PYTHON_TOOL
from glm_agent.glm._facts import Family
from glm_agent.glm._render_glm4 import call_body
from glm_agent.glm._render_xml import call_arguments
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)

if TYPE_CHECKING:
    from glm_agent.glm._format import GLMFormat

__all__ = ["check_chat_template", "render_chat_template", "template_messages"]


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _glm4_tool(t: ToolDefinition) -> dict[str, Any]:
    if t.name in (PYTHON_TOOL, BROWSER_TOOL):
        return {"type": t.name}  # the template's built-in tool blocks
    return t.to_openai()


def template_messages(
    family: str, messages: Sequence[Message], tools: Sequence[ToolDefinition] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(template messages, `tools=` value) for rendering `family`'s official template."""
    out: list[dict[str, Any]] = []
    if family in ("glm4", "glm4-0414"):
        names = {t.name for t in tools}
        if tools and family == "glm4":
            out.append({"role": "system", "content": "", "tools": [_glm4_tool(t) for t in tools]})
        for m in messages:
            if isinstance(m, AssistantMessage):
                if m.tool_calls:
                    out.extend(
                        {
                            "role": "assistant",
                            "metadata": c.name,
                            "content": call_body(c, family == "glm4" and c.name in names),
                        }
                        for c in m.tool_calls
                    )
                else:
                    out.append({"role": "assistant", "content": m.content or ""})
            elif isinstance(m, ToolMessage):
                out.append({"role": "observation", "content": m.content})
            else:
                out.append({"role": m.role, "content": m.content})
        return out, ([t.to_openai() for t in tools] if family == "glm4-0414" and tools else None)
    for m in messages:
        if isinstance(m, AssistantMessage):
            d: dict[str, Any] = {"role": "assistant", "content": m.content or ""}
            if m.reasoning is not None:
                d["reasoning_content"] = m.reasoning
            if m.tool_calls:
                d["tool_calls"] = [_xml_call(c) for c in m.tool_calls]
            out.append(d)
        elif isinstance(m, ToolMessage):
            out.append({"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id})
        else:
            out.append({"role": m.role, "content": m.content})
    return out, ([t.to_openai() for t in tools] or None) if family in ("glm45", "glm47") else None


def _xml_call(c: ToolCall) -> dict[str, Any]:
    return {
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": call_arguments(c)},
    }


def render_chat_template(
    chat_template: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
    **kwargs: Any,
) -> str:
    """Render a Jinja chat template exactly as transformers' `render_jinja_template` does."""
    try:
        import jinja2
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # pragma: no cover - jinja2 ships with transformers
        raise MissingDependencyError("jinja2", "local", "checking chat templates") from exc

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(chat_template)
    return template.render(
        messages=messages,
        tools=tools,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )


def _probes(family: str) -> list[tuple[str, list[Message], list[ToolDefinition], dict[str, Any]]]:
    weather = ToolDefinition(
        name="get_weather",
        description="查询天气",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    )
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "北京", "days": 2}')
    chat: list[Message] = [
        SystemMessage(content="You are helpful."),
        UserMessage(content="Hi"),
        AssistantMessage(content="Hello!"),
        UserMessage(content="天气？"),
    ]
    probes: list[tuple[str, list[Message], list[ToolDefinition], dict[str, Any]]] = [
        ("plain chat", chat, [], {}),
        ("no generation prompt", chat[:3], [], {"add_generation_prompt": False}),
    ]
    if family == "chatglm3":
        return probes
    loop: list[Message] = [
        UserMessage(content="北京天气？"),
        AssistantMessage(content="", tool_calls=(call,)),
        ToolMessage(content='{"temp": 20}', tool_call_id="call_1"),
    ]
    probes.append(("tool call and result", loop, [weather], {}))
    if family in ("glm45", "glm47"):
        thought: list[Message] = [
            UserMessage(content="Hi"),
            AssistantMessage(content="Hello", reasoning="greet"),
        ]
        probes += [
            ("reasoning after the last user turn", thought, [], {"add_generation_prompt": False}),
            ("thinking off", chat, [], {"enable_thinking": False}),
            ("thinking on", loop, [weather], {"enable_thinking": True}),
        ]
    return probes


def check_chat_template(
    chat_template: str, family: Family | str | GLMFormat, *, persona: str | None = None
) -> list[str]:
    """Describe where `chat_template` and our renderer of `family` disagree (empty: they agree).

    Args:
        chat_template: A checkpoint's `chat_template` string.
        family: Our family (see `FAMILIES`), or a configured `GLMFormat`, to compare with.
        persona: glm4 only: the persona our renderer uses (default: the format's own;
            `GLM4_PERSONA_2024_06` for checkpoints with the June-2024 "ChatGLM" one).

    Raises:
        UserError: unknown family.
        MissingDependencyError: jinja2 is not installed.
    """
    from glm_agent.glm._format import GLMFormat as _Format
    from glm_agent.glm._format import get_format

    fmt = family if isinstance(family, _Format) else get_format(family)
    if persona is not None:
        fmt = _Format(fmt.family, glm4_persona=persona)
    problems: list[str] = []
    for label, msgs, tools, kw in _probes(fmt.family):
        gen = kw.get("add_generation_prompt", True)
        thinking = kw.get("enable_thinking")
        ours = fmt.render(msgs, tools, add_generation_prompt=gen, enable_thinking=thinking)
        tmsgs, ttools = template_messages(fmt.family, msgs, tools)
        extra = {"enable_thinking": thinking} if thinking is not None else {}
        try:
            theirs = render_chat_template(
                chat_template, tmsgs, ttools, add_generation_prompt=gen, **extra
            )
        except Exception as exc:  # any template failure is a finding, not a crash
            problems.append(f"{label}: the template failed to render: {exc}")
            continue
        if theirs != ours:
            i = next(
                (n for n, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                min(len(ours), len(theirs)),
            )
            problems.append(
                f"{label}: prompts differ at character {i}: template {theirs[i : i + 40]!r}, "
                f"{fmt.family} format {ours[i : i + 40]!r}"
            )
    return problems
