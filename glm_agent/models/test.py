"""`TestModel`: calls every tool with schema-valid arguments, then answers. No weights needed."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from glm_agent.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
)
from glm_agent.models._schema_values import value_for_schema
from glm_agent.models.base import ChatModel
from glm_agent.models.function import estimate_tokens
from glm_agent.settings import ModelSettings

__all__ = ["TestModel"]


class TestModel(ChatModel):
    """A model that exercises an agent's tools without any weights.

    Turn 1 calls every tool (or those in `call_tools`) at once with arguments generated from
    each tool's JSON schema. The next turn answers: it calls the structured-output tool when the
    agent has one, otherwise replies with `custom_output_text` or a JSON summary of the results.

    Args:
        call_tools: `"all"` or the names of the tools to call.
        custom_output_text: The final answer text.
        custom_output_args: Arguments for the structured-output tool.
        seed: Varies the generated arguments.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        call_tools: Sequence[str] | str = "all",
        custom_output_text: str | None = None,
        custom_output_args: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.call_tools = call_tools
        self.custom_output_text = custom_output_text
        self.custom_output_args = custom_output_args
        self.seed = seed
        self.name = "test"

    def _tools_to_call(self, tools: Sequence[ToolDefinition]) -> list[ToolDefinition]:
        chosen = [t for t in tools if t.kind != "output"]
        if self.call_tools != "all":
            chosen = [t for t in chosen if t.name in self.call_tools]
        return chosen

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Call the tools on the first turn after a user message; answer on the next."""
        rng = random.Random(self.seed)
        settings = settings or ModelSettings()
        last_user = max(
            (i for i, m in enumerate(messages) if isinstance(m, UserMessage)), default=-1
        )
        called = any(
            isinstance(m, AssistantMessage) and m.tool_calls for m in messages[last_user + 1 :]
        )
        to_call = self._tools_to_call(tools) if settings.tool_choice != "none" else []
        if isinstance(settings.tool_choice, str) and settings.tool_choice not in (
            "auto",
            "none",
            "required",
        ):
            to_call = [t for t in tools if t.name == settings.tool_choice]
        output_tool = next((t for t in tools if t.kind == "output"), None)
        if to_call and not called:
            calls = tuple(
                ToolCall.from_args(t.name, value_for_schema(t.parameters, rng)) for t in to_call
            )
            reply = AssistantMessage(tool_calls=calls)
        elif output_tool is not None:
            args = self.custom_output_args or value_for_schema(output_tool.parameters, rng)
            reply = AssistantMessage(tool_calls=(ToolCall.from_args(output_tool.name, args),))
        else:
            reply = AssistantMessage(content=self._answer(messages[last_user + 1 :]))
        return ModelResponse(
            message=reply,
            usage=Usage(
                input_tokens=estimate_tokens(messages),
                output_tokens=estimate_tokens([reply]),
                requests=1,
            ),
            finish_reason="tool_calls" if reply.tool_calls else "stop",
            model_name=self.name,
        )

    def _answer(self, turn: Sequence[Message]) -> str:
        if self.custom_output_text is not None:
            return self.custom_output_text
        results = {m.name or m.tool_call_id: m.content for m in turn if isinstance(m, ToolMessage)}
        return json.dumps(results, ensure_ascii=False) if results else "success (no tool calls)"
