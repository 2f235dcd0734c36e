"""Raw model output → content, reasoning and tool calls (conformance README §5).

Parsing never raises: text that is not a complete, valid call stays content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from glm_agent.glm._builtin import BROWSER_TOOL, PYTHON_TOOL, decode_builtin
from glm_agent.glm._facts import STOP_MARKERS
from glm_agent.glm._typing import ArgTyper
from glm_agent.messages import AssistantMessage, ToolCall, ToolDefinition

__all__ = [
    "ParsedCall",
    "ParsedOutput",
    "Toolbox",
    "glm4_call",
    "parse_chatglm3",
    "parse_glm4",
    "parse_xml",
    "split_reasoning",
    "strip_stops",
    "xml_call",
]

_TAG_FREE = r"[^<]*(?:<(?!/?arg_(?:key|value)>)[^<]*)*"
PAIR = re.compile(rf"<arg_key>({_TAG_FREE})</arg_key>\s*<arg_value>({_TAG_FREE})</arg_value>")
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


@dataclass(frozen=True)
class ParsedCall:
    """One call read from the output: name and decoded arguments."""

    name: str
    args: dict[str, Any]

    def arguments(self) -> str:
        """The arguments as the JSON string a `ToolCall` carries."""
        return json.dumps(self.args, ensure_ascii=False)


@dataclass
class ParsedOutput:
    """The parts of one output, before ids are given to the calls."""

    content: str | None = None
    reasoning: str | None = None
    calls: list[ParsedCall] = field(default_factory=list)

    def message(self, ids: Sequence[str] = ()) -> AssistantMessage:
        """As an `AssistantMessage`; calls take `ids` in order, then fresh ones."""
        calls = tuple(
            ToolCall(
                name=c.name, arguments=c.arguments(), **({"id": ids[i]} if i < len(ids) else {})
            )
            for i, c in enumerate(self.calls)
        )
        return AssistantMessage(content=self.content, reasoning=self.reasoning, tool_calls=calls)


class Toolbox:
    """The tools a parser may recognise, with their argument typers."""

    def __init__(self, tools: Sequence[ToolDefinition]) -> None:
        self.names: frozenset[str] = frozenset(t.name for t in tools)
        self._params: dict[str, Mapping[str, Any]] = {t.name: t.parameters for t in tools}
        self._typers: dict[str, ArgTyper] = {}

    def typer(self, name: str) -> Callable[[str, str], Any]:
        """The argument typer of tool `name`."""
        typer = self._typers.get(name)
        if typer is None:
            typer = self._typers[name] = ArgTyper(self._params.get(name, {}))
        return typer

    def could_be_name(self, text: str) -> bool:
        """Whether `text` (left-stripped) may still grow into `name.strip()` of a tool."""
        core = text.rstrip()
        if core != text:
            return core in self.names
        return any(n.startswith(core) for n in self.names)


def strip_stops(text: str) -> str:
    """`text` without any number of trailing stop markers (and the whitespace between them)."""
    while True:
        t = text.rstrip()
        for m in STOP_MARKERS:
            if t.endswith(m):
                text = t[: -len(m)]
                break
        else:
            return text


def _none_if_blank(text: str) -> str | None:
    text = text.strip()
    return text or None


def glm4_call(seg: str, tools: Toolbox) -> ParsedCall | None:
    """The call a glm4 segment (already stripped) makes, or None when it is text."""
    head, _, body = seg.partition("\n")
    name = head.strip()
    if name not in tools.names:
        return None
    body = body.strip()
    try:
        args = json.loads(body)
    except (ValueError, RecursionError):
        args = None
    if isinstance(args, dict):
        return ParsedCall(name, args)
    if name in (PYTHON_TOOL, BROWSER_TOOL):
        builtin = decode_builtin(name, body)
        if builtin is not None:
            return ParsedCall(name, builtin)
    return None


def parse_glm4(text: str, tools: Toolbox) -> ParsedOutput:
    """glm4 `name\\n{json}` segments split by `<|assistant|>` (stop markers already stripped)."""
    out = ParsedOutput()
    texts: list[str] = []
    for raw_seg in text.split("<|assistant|>"):
        seg = raw_seg.strip()
        if not seg:
            continue
        call = glm4_call(seg, tools)
        if call is None:
            texts.append(seg)
        else:
            out.calls.append(call)
    out.content = "\n".join(texts) or None
    return out


def split_reasoning(text: str, *, all_reasoning: bool) -> tuple[str | None, str | None]:
    """(reasoning, rest) by the `<think>` rules; rest None means "no content, no calls".

    `all_reasoning`: the prompt opened thinking (glm47), so an output without `</think>`
    is all reasoning.
    """
    end = text.find("</think>")
    if end != -1:
        head = text[:end].lstrip()
        if head.startswith("<think>"):
            head = head[len("<think>") :]
        return _none_if_blank(head), text[end + len("</think>") :]
    if all_reasoning:
        return _none_if_blank(text), None
    stripped = text.lstrip()
    if stripped.startswith("<think>"):
        return _none_if_blank(stripped[len("<think>") :]), None
    return None, text


def xml_call(block: str, tools: Toolbox) -> ParsedCall | None:
    """The call one `<tool_call>` block body makes, or None when it is invalid."""
    k = block.find("<arg_key>")
    name = (block if k == -1 else block[:k]).strip()
    if name not in tools.names:
        return None
    args: dict[str, Any] = {}
    if k != -1:
        typer = tools.typer(name)
        for key, raw in PAIR.findall(block, k):
            key = key.strip()
            args[key] = typer(key, raw)
    return ParsedCall(name, args)


def parse_xml(text: str, tools: Toolbox, *, all_reasoning: bool) -> ParsedOutput:
    """GLM-4.5+ output: optional reasoning, then content and `<tool_call>` blocks."""
    out = ParsedOutput()
    out.reasoning, rest = split_reasoning(text, all_reasoning=all_reasoning)
    if rest is None:
        return out
    pieces: list[str] = []
    pos = 0
    for m in _BLOCK.finditer(rest):
        call = xml_call(m.group(1), tools)
        if call is None:
            continue
        pieces.append(rest[pos : m.start()])
        pos = m.end()
        out.calls.append(call)
    pieces.append(rest[pos:])
    out.content = _none_if_blank("".join(pieces))
    return out


def parse_glm4_0414(text: str, tools: Toolbox) -> ParsedOutput:
    """GLM-4-0414 / GLM-Z1: optional `<think>` reasoning (Z1), then glm4 segments."""
    reasoning, rest = split_reasoning(text, all_reasoning=False)
    out = parse_glm4(rest, tools) if rest is not None else ParsedOutput()
    out.reasoning = reasoning
    return out


def parse_chatglm3(text: str) -> ParsedOutput:
    """ChatGLM3: the whole output is content (its HF template has no tool calls)."""
    return ParsedOutput(content=_none_if_blank(text))
