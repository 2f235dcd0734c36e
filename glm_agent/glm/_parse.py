"""Raw model output → content, reasoning and tool calls (conformance README §5).

Parsing never raises and runs in time linear in the output. Text that is not a complete call
to a known tool stays content. A call whose arguments cannot be read intact is never returned
with what could be read: it keeps its raw argument text (`ParsedCall.raw`), which is not JSON,
so the agent loop answers it as invalid arguments for the model to correct. Arguments are
finite JSON of valid Unicode (see `_typing`); lone surrogates in the text become U+FFFD.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from glm_agent.glm._builtin import BROWSER_TOOL, PYTHON_TOOL, decode_builtin
from glm_agent.glm._facts import STOP_MARKERS
from glm_agent.glm._typing import ArgTyper, is_clean_json, strict_json
from glm_agent.glm._xml_scan import CALL, END_CALL, Finder, has_stray, is_debris, scan_block
from glm_agent.messages import AssistantMessage, ToolCall, ToolDefinition

__all__ = [
    "ParsedCall",
    "ParsedOutput",
    "Toolbox",
    "glm4_call",
    "parse_answer",
    "parse_chatglm3",
    "parse_glm4",
    "parse_xml",
    "split_reasoning",
    "strip_stops",
]

ANSWER_TAGS = ("<answer>", "</answer>")
_ANSWER = re.compile("</?answer>")


@dataclass(frozen=True)
class ParsedCall:
    """One call read from the output: name and decoded arguments (or its raw text)."""

    name: str
    args: dict[str, Any]
    raw: str | None = None
    """Set when the arguments could not be read intact: the model's text after the name."""

    def arguments(self) -> str:
        """The arguments as the string a `ToolCall` carries: JSON, or the raw text of a damaged
        call (not JSON, so the agent loop reports invalid arguments instead of running it)."""
        if self.raw is not None:
            return self.raw
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

    def typer(self, name: str) -> ArgTyper:
        """The argument typer of tool `name`."""
        typer = self._typers.get(name)
        if typer is None:
            typer = self._typers[name] = ArgTyper(self._params.get(name, {}))
        return typer

    def schema(self, name: str) -> Mapping[str, Any]:
        """The parameters schema of tool `name` (empty when unknown)."""
        return self._params.get(name, {})

    def could_be_name(self, text: str) -> bool:
        """Whether `text` (left-stripped) may still grow into `name.strip()` of a tool."""
        core = text.rstrip()
        if core != text:
            return core in self.names
        return any(n.startswith(core) for n in self.names)


def strip_stops(text: str) -> str:
    """`text` without any number of trailing stop markers (and the whitespace between them)."""
    end = len(text)
    while True:
        e = end
        while e and text[e - 1].isspace():
            e -= 1
        for m in STOP_MARKERS:
            if text.endswith(m, 0, e):
                end = e - len(m)
                break
        else:
            return text[:end] if end < len(text) else text


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
        args = strict_json(body)  # finite, valid-Unicode JSON only; anything else is text
    except ValueError:
        args = None
    if isinstance(args, dict):
        typer = tools.typer(name)
        return ParsedCall(name, {k: typer.undouble(k, v) for k, v in args.items()})
    if name in (PYTHON_TOOL, BROWSER_TOOL):
        builtin = decode_builtin(name, body)
        if builtin is not None and is_clean_json(builtin):
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
        stripped = text.lstrip()
        if stripped.startswith("<think>"):  # the model re-opened what the prompt opened
            stripped = stripped[len("<think>") :]
        return _none_if_blank(stripped), None
    stripped = text.lstrip()
    if stripped.startswith("<think>"):
        return _none_if_blank(stripped[len("<think>") :]), None
    return None, text


def parse_xml(text: str, tools: Toolbox, *, all_reasoning: bool) -> ParsedOutput:
    """GLM-4.5+ output: optional reasoning, then content and `<tool_call>` blocks.

    A stray tag after a call (`has_stray`) means some value held markup and a call ended
    early: every call before it is damaged (kept with its raw text, never run as read).
    """
    out = ParsedOutput()
    out.reasoning, rest = split_reasoning(text, all_reasoning=all_reasoning)
    if rest is None:
        return out
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []  # each call's raw argument text
    f = Finder(rest)
    pos = 0
    suspect = 0  # the calls before this index are damaged
    while True:
        b = f.next(CALL, pos)
        if spans and has_stray(f, pos, b if b != -1 else len(rest)):
            suspect = len(spans)
        if b == -1:
            break
        sc = scan_block(rest, b + len(CALL), tools.names, tools.typer, f)
        if sc.outcome == "incomplete":
            break
        if sc.outcome == "invalid":  # not a call: the block stays in the content
            pieces.append(rest[pos : sc.end])
            if spans and is_debris(sc.region):
                suspect = len(spans)
        else:
            pieces.append(rest[pos:b])
            spans.append((sc.name_end, sc.end - len(END_CALL)))
            raw = rest[sc.name_end : sc.end - len(END_CALL)] if sc.damaged else None
            out.calls.append(ParsedCall(sc.name, sc.args if raw is None else {}, raw))
        pos = sc.end
    for i in range(suspect):
        if out.calls[i].raw is None:
            out.calls[i] = ParsedCall(out.calls[i].name, {}, rest[spans[i][0] : spans[i][1]])
    pieces.append(rest[pos:])
    out.content = _none_if_blank("".join(pieces))
    return out


def parse_glm4_0414(text: str, tools: Toolbox) -> ParsedOutput:
    """GLM-4-0414 / GLM-Z1: optional `<think>` reasoning (Z1), then glm4 segments."""
    reasoning, rest = split_reasoning(text, all_reasoning=False)
    out = parse_glm4(rest, tools) if rest is not None else ParsedOutput()
    out.reasoning = reasoning
    return out


def parse_answer(text: str) -> ParsedOutput:
    """GLM-4.1V-Thinking: `<think>reasoning</think><answer>content</answer>`, tags dropped."""
    reasoning, rest = split_reasoning(text, all_reasoning=False)
    content = _ANSWER.sub("", rest) if rest is not None else None
    return ParsedOutput(content=_none_if_blank(content or ""), reasoning=reasoning)


def parse_chatglm3(text: str) -> ParsedOutput:
    """ChatGLM3: the whole output is content (its HF template has no tool calls)."""
    return ParsedOutput(content=_none_if_blank(text))
