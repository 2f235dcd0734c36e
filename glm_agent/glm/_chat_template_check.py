"""Check a checkpoint's own `chat_template` against our renderer of its family.

A template whose sha256 is one we have proven byte-identical to our renderer (`KNOWN_TEMPLATES`)
passes at once. Any other revision is rendered the way transformers renders chat templates
(Jinja2 immutable sandbox, `trim_blocks`, `lstrip_blocks`, `loopcontrols`, `tojson` =
`json.dumps` with `ensure_ascii=False`) on probe conversations, after the OpenAI → template
message mapping of conformance README §4; each disagreement names the first differing byte
(offset and the text around it). jinja2 is imported only here.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from glm_agent.exceptions import MissingDependencyError
from glm_agent.glm._builtin import BROWSER_TOOL, PYTHON_TOOL
from glm_agent.glm._content import template_parts
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
    content_text,
)

if TYPE_CHECKING:
    from glm_agent.glm._format import GLMFormat

__all__ = [
    "KNOWN_TEMPLATES",
    "KnownTemplate",
    "check_chat_template",
    "first_difference",
    "render_chat_template",
    "template_messages",
]


class KnownTemplate(NamedTuple):
    """A template revision proven byte-identical to one of our formats."""

    family: str
    persona: str | None
    """glm4 only: the persona the format must use (None: the default)."""
    source: str


# sha256 of the template text → the revision; each is in ../shared/glm/templates and tested.
KNOWN_TEMPLATES: dict[str, KnownTemplate] = {
    "cee9facd39c67f98e6b94d95fdc31ba00a069b9ccaf7bc25d9e54b7b1bb39c24": KnownTemplate(
        "glm4", None, "glm-4-9b-chat tokenizer_config.json (persona 'GLM-4')"
    ),
    "27288f957f8364c990a2ce13bf5f8bf86921c4bce467ce698c76dcc69466d821": KnownTemplate(
        "glm4", "2024-06", "glm-4-9b-chat, June 2024 (persona 'ChatGLM')"
    ),
    "46786fd637de2728b41928ac3b6983e2d8a04706e51778de031fa933eb6f566f": KnownTemplate(
        "glm45", None, "GLM-4.5 / 4.6 (llama.cpp models/templates/GLM-4.6.jinja)"
    ),
    "d63ad536c3c81880043e22ec7fd08db42b4d8fb7c89c7138bc562bfa25281375": KnownTemplate(
        "glm47", None, "zai-org/GLM-4.7-Flash chat_template.jinja"
    ),
    "e4496f930bf7b7bc7e7cf8232e90fd43ab4a9d8eb9c77f6ec98f5beb5c5cbeaa": KnownTemplate(
        "chatglm3", None, "ChatGLM3-6B (llama.cpp template tests)"
    ),
    "847603d3ed14387a2b45c197f8d07ddee0f9938051549c727cbc894facfea78b": KnownTemplate(
        "glm41v", None, "zai-org/GLM-4.1V-9B-Thinking @ 3c1471e5"
    ),
    "34d5ee66b12fa6446cdae131c352b8f68cd85369e0e6fda115583805fada3891": KnownTemplate(
        "glm53", None, "zai-org/GLM-5.3-Flash (sgl-project/sglang docker/glm53-flash)"
    ),
}


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
                out.append({"role": "observation", "content": content_text(m.content)})
            else:
                out.append({"role": m.role, "content": content_text(m.content)})
        return out, ([t.to_openai() for t in tools] if family == "glm4-0414" and tools else None)
    if family in ("chatglm3", "glm41v"):
        for m in messages:
            if isinstance(m, AssistantMessage):
                out.append({"role": m.role, "content": m.content or ""})
            else:
                out.append({"role": m.role, "content": template_parts(m.content, "typed")})
        return out, None
    # GLM-V templates read user parts as typed ones (vLLM's mapping), tool parts as sent.
    user_style: Literal["openai", "typed"] = "typed" if family == "glm45" else "openai"
    for m in messages:
        if isinstance(m, AssistantMessage):
            d: dict[str, Any] = {"role": "assistant", "content": m.content or ""}
            if m.reasoning is not None:
                d["reasoning_content"] = m.reasoning
            if m.tool_calls:
                d["tool_calls"] = [_xml_call(c) for c in m.tool_calls]
            out.append(d)
        elif isinstance(m, ToolMessage):
            content = template_parts(m.content, "openai")
            out.append({"role": "tool", "content": content, "tool_call_id": m.tool_call_id})
        else:
            out.append({"role": m.role, "content": template_parts(m.content, user_style)})
    return out, ([t.to_openai() for t in tools] or None)


def _xml_call(c: ToolCall) -> dict[str, Any]:
    return {
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": call_arguments(c)},
    }


@functools.lru_cache(maxsize=16)
def _compile(chat_template: str) -> Any:
    """The compiled template (compiling costs far more than rendering; templates repeat)."""
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
    return env.from_string(chat_template)


def render_chat_template(
    chat_template: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
    **kwargs: Any,
) -> str:
    """Render a Jinja chat template exactly as transformers' `render_jinja_template` does."""
    result: str = _compile(chat_template).render(
        messages=messages,
        tools=tools,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )
    return result


Probe = tuple[str, list[Message], list[ToolDefinition], dict[str, Any]]


def _probes(family: str) -> list[Probe]:
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
    probes: list[Probe] = [
        ("plain chat", chat, [], {}),
        ("no generation prompt", chat[:3], [], {"add_generation_prompt": False}),
    ]
    if family in ("chatglm3", "glm41v"):
        return probes
    loop: list[Message] = [
        UserMessage(content="北京天气？"),
        AssistantMessage(content="", tool_calls=(call,)),
        ToolMessage(content='{"temp": 20}', tool_call_id="call_1"),
    ]
    probes.append(("tool call and result", loop, [weather], {}))
    if family in ("glm4", "glm4-0414"):
        return probes
    thought: list[Message] = [
        UserMessage(content="Hi"),
        AssistantMessage(content="Hello", reasoning="greet"),
    ]
    history: list[Message] = [*thought, UserMessage(content="再见")]
    probes += [
        ("reasoning after the last user turn", thought, [], {"add_generation_prompt": False}),
        ("reasoning before the last user turn", history, [], {}),
        ("thinking off", chat, [], {"enable_thinking": False}),
        ("thinking on", loop, [weather], {"enable_thinking": True}),
    ]
    if family != "glm45":
        probes.append(("past reasoning kept", history, [], {"clear_thinking": False}))
        probes.append(("past reasoning cleared", history, [], {"clear_thinking": True}))
    if family in ("glm52", "glm53"):
        probes.append(("reasoning effort high", chat, [], {"reasoning_effort": "high"}))
    if family == "glm53":
        two = (call, call.model_copy(update={"id": "call_2", "arguments": '{"city": "上海"}'}))
        shuffled: list[Message] = [
            UserMessage(content="两地天气？"),
            AssistantMessage(content="", tool_calls=two),
            ToolMessage(content="上海 25", tool_call_id="call_2"),
            ToolMessage(content="北京 20", tool_call_id="call_1"),
        ]
        probes.append(("tool results out of call order", shuffled, [weather], {}))
        probes.append(("reasoning effort low", chat, [], {"reasoning_effort": "low"}))
    return probes


def first_difference(theirs: str, ours: str) -> tuple[int, int]:
    """(character index, UTF-8 byte offset) of the first place two prompts differ."""
    i = next(
        (n for n, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
        min(len(ours), len(theirs)),
    )
    return i, len(theirs[:i].encode("utf-8", "surrogatepass"))


def check_chat_template(
    chat_template: str, family: Family | str | GLMFormat, *, persona: str | None = None
) -> list[str]:
    """Describe where `chat_template` and our renderer of `family` disagree (empty: they agree).

    A revision in `KNOWN_TEMPLATES` for this family (and persona) agrees without rendering.
    Any other is rendered on probe conversations (tools, reasoning, thinking switches, reasoning
    effort, result order, as the family has them); each probe that differs is described by its
    first differing byte: its offset, the text before it, and what each side has there.

    Args:
        chat_template: A checkpoint's `chat_template` string.
        family: Our family (see `FAMILIES`), or a configured `GLMFormat`, to compare with.
        persona: glm4 only: the persona our renderer uses (default: the format's own;
            `GLM4_PERSONA_2024_06` for checkpoints with the June-2024 "ChatGLM" one).

    Raises:
        UserError: unknown family.
        MissingDependencyError: jinja2 is not installed (only needed for unknown revisions).
    """
    from glm_agent.glm._format import GLMFormat as _Format
    from glm_agent.glm._format import get_format
    from glm_agent.glm._render_glm4 import GLM4_PERSONA_2024_06

    fmt = family if isinstance(family, _Format) else get_format(family)
    if persona is not None:
        fmt = _Format(fmt.family, glm4_persona=persona)
    known = KNOWN_TEMPLATES.get(hashlib.sha256(chat_template.encode("utf-8")).hexdigest())
    if known is not None and known.family == fmt.family:
        wanted = (
            GLM4_PERSONA_2024_06 if known.persona == "2024-06" else _Format("glm4").glm4_persona
        )
        if fmt.family != "glm4" or fmt.glm4_persona == wanted:
            return []
    problems: list[str] = []
    for label, msgs, tools, kw in _probes(fmt.family):
        gen = kw.pop("add_generation_prompt", True)
        ours = fmt.render(msgs, tools, add_generation_prompt=gen, **kw)
        tmsgs, ttools = template_messages(fmt.family, msgs, tools)
        try:
            theirs = render_chat_template(
                chat_template, tmsgs, ttools, add_generation_prompt=gen, **kw
            )
        except Exception as exc:  # any template failure is a finding, not a crash
            problems.append(f"{label}: the template failed to render: {exc}")
            continue
        if theirs != ours:
            i, byte = first_difference(theirs, ours)
            problems.append(
                f"{label}: prompts differ at byte {byte} (character {i}) after "
                f"{theirs[max(0, i - 30) : i]!r}: the template has {theirs[i : i + 40]!r}, "
                f"the {fmt.family} format {ours[i : i + 40]!r}"
            )
    return problems
