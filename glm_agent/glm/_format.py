"""`GLMFormat`: one family's renderer, parser and streaming parser behind one object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from glm_agent.exceptions import UserError
from glm_agent.glm._facts import FAMILIES, Family, FamilyFacts, get_facts
from glm_agent.glm._parse import (
    ParsedOutput,
    Toolbox,
    parse_answer,
    parse_chatglm3,
    parse_glm4,
    parse_glm4_0414,
    parse_xml,
    strip_stops,
)
from glm_agent.glm._render_chatglm3 import render_chatglm3
from glm_agent.glm._render_glm4 import GLM4_PERSONA, render_glm4, render_glm4_0414
from glm_agent.glm._render_glm5 import GLM5_VARIANTS, render_glm5
from glm_agent.glm._render_glm41v import render_glm41v
from glm_agent.glm._render_xml import render_xml
from glm_agent.glm._stream import GLMStreamParser
from glm_agent.glm._typing import clean_text
from glm_agent.messages import AssistantMessage, Message, ToolDefinition

__all__ = ["GLMFormat", "get_format"]


@dataclass(frozen=True)
class GLMFormat:
    """The chat format of one GLM family: messages + tools → prompt, raw output → message."""

    family: Family
    """Family name (see `FAMILIES`)."""
    glm4_persona: str = GLM4_PERSONA
    """glm4 only: the persona sentence of the tools block (`GLM4_PERSONA_2024_06` for June-2024)."""

    @property
    def facts(self) -> FamilyFacts:
        """Stop tokens, special tokens, sampling defaults and context length of the family."""
        return get_facts(self.family)

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        *,
        add_generation_prompt: bool = True,
        enable_thinking: bool | None = None,
        clear_thinking: bool | None = None,
        reasoning_effort: str | None = None,
    ) -> str:
        """The prompt string for `messages` (already starts with `[gMASK]<sop>`; add no BOS).

        Args:
            messages: The conversation, OpenAI-shaped.
            tools: Tools the model may call.
            add_generation_prompt: End with the assistant turn opener.
            enable_thinking: GLM-4.5+ thinking switch; None leaves the template's default
                (glm53 always thinks and ignores it).
            clear_thinking: Preserved thinking: False keeps the reasoning of earlier turns in the
                prompt (glm47, glm5, glm52; they clear it by default), True clears it (glm53
                keeps it by default).
            reasoning_effort: glm52 (`max`, `high`) and glm53 (`max`, `high`, `low`): the
                `Reasoning Effort` line; None or another value means `max`.

        Raises:
            UserError: the family cannot express the conversation (chatglm3 / glm41v with
                tools) or a tool call's arguments are JSON but not an object (XML families).
        """
        f = self.family
        if f == "glm4":
            return render_glm4(
                messages,
                tools,
                add_generation_prompt=add_generation_prompt,
                persona=self.glm4_persona,
            )
        if f == "glm4-0414":
            return render_glm4_0414(messages, tools, add_generation_prompt=add_generation_prompt)
        if f == "chatglm3":
            return render_chatglm3(messages, tools, add_generation_prompt=add_generation_prompt)
        if f == "glm41v":
            return render_glm41v(messages, tools, add_generation_prompt=add_generation_prompt)
        if f in GLM5_VARIANTS:
            return render_glm5(
                messages,
                tools,
                variant=GLM5_VARIANTS[f],
                add_generation_prompt=add_generation_prompt,
                enable_thinking=enable_thinking,
                clear_thinking=clear_thinking,
                reasoning_effort=reasoning_effort,
            )
        return render_xml(
            messages,
            tools,
            compact=f == "glm47",
            add_generation_prompt=add_generation_prompt,
            enable_thinking=enable_thinking,
            clear_thinking=clear_thinking,
        )

    def generation_prompt(self, enable_thinking: bool | None = None) -> str:
        """What a prompt rendered with `add_generation_prompt=True` ends with.

        The model's raw output continues right after it (glm47 / GLM-5.x with thinking: after
        `<think>`).
        """
        f = self.family
        if f in ("glm47", "glm5", "glm52"):
            return "<|assistant|>" + ("</think>" if enable_thinking is False else "<think>")
        if f == "glm53":
            return "<|assistant|><think>"
        if f == "glm45" and enable_thinking is False:
            return "<|assistant|>\n<think></think>"
        if f == "glm41v":
            return "<|assistant|>\n"
        return "<|assistant|>"

    def opens_thinking(self, enable_thinking: bool | None = None) -> bool:
        """Whether the generation prompt opens `<think>`, so output before `</think>` (or all of
        it, when cut off) is reasoning."""
        return self.generation_prompt(enable_thinking).endswith("<think>")

    def parse_parts(
        self,
        raw: str,
        tools: Sequence[ToolDefinition] | Toolbox = (),
        *,
        enable_thinking: bool | None = None,
    ) -> ParsedOutput:
        """`parse` before call ids are given (used by the streaming parser)."""
        box = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        text = clean_text(strip_stops(raw))
        f = self.family
        if f == "glm4":
            return parse_glm4(text, box)
        if f == "glm4-0414":
            return parse_glm4_0414(text, box)
        if f == "chatglm3":
            return parse_chatglm3(text)
        if f == "glm41v":
            return parse_answer(text)
        return parse_xml(text, box, all_reasoning=self.opens_thinking(enable_thinking))

    def parse(
        self,
        raw: str,
        tools: Sequence[ToolDefinition] = (),
        *,
        enable_thinking: bool | None = None,
    ) -> AssistantMessage:
        """Content, reasoning and tool calls of one raw output; never raises.

        Args:
            raw: Decoded output after the generation prompt (special tokens kept), optionally
                followed by its stop-token text.
            tools: The tools offered; only their names become calls, typed by their schemas.
            enable_thinking: The value the prompt was rendered with (glm47 / GLM-5.x: unless
                False, an output without `</think>` is all reasoning; glm53 always).

        Returns:
            The assistant message; calls get fresh ids and `json.dumps` arguments (a call whose
            arguments could not be read intact carries their raw text instead, which is not
            JSON: the agent loop then asks the model to correct it).
        """
        return self.parse_parts(raw, tools, enable_thinking=enable_thinking).message()

    def stream_parser(
        self, tools: Sequence[ToolDefinition] = (), *, enable_thinking: bool | None = None
    ) -> GLMStreamParser:
        """A parser fed decoded text deltas; its `result` equals `parse` of the whole text."""
        return GLMStreamParser(self, tools, enable_thinking=enable_thinking)


_FORMATS: dict[str, GLMFormat] = {f: GLMFormat(f) for f in FAMILIES}


def get_format(family: str) -> GLMFormat:
    """The format of `family` (see `FAMILIES`; `family_for_model` maps model names to one).

    Raises:
        UserError: unknown family; the message lists the valid ones.
    """
    fmt = _FORMATS.get(family)
    if fmt is None:
        raise UserError(f"unknown GLM family {family!r}; families: {', '.join(FAMILIES)}")
    return fmt
