"""Structured output: an output type offered to the model as the `final_result` tool."""

from __future__ import annotations

import json
import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from glm_agent.exceptions import OutputValidationError
from glm_agent.messages import ToolDefinition
from glm_agent.tools import clean_schema

__all__ = ["OUTPUT_TOOL_NAME", "OutputSchema"]

OUTPUT_TOOL_NAME = "final_result"
OutputT = TypeVar("OutputT")

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class OutputSchema(Generic[OutputT]):
    """Validates final answers against an output type (a pydantic model or any type).

    Types whose schema is not an object (`int`, `list[str]`...) are wrapped as `{"result": ...}`
    because tool arguments must be an object.
    """

    def __init__(self, output_type: type[OutputT]) -> None:
        self.output_type = output_type
        self.adapter: TypeAdapter[OutputT] = TypeAdapter(output_type)
        schema = clean_schema(self.adapter.json_schema())
        self.wrapped = schema.get("type") != "object" or not (
            isinstance(output_type, type) and issubclass(output_type, BaseModel)
        )
        if self.wrapped:
            schema = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
        doc = getattr(output_type, "__doc__", None) if not self.wrapped else None
        self.definition = ToolDefinition(
            name=OUTPUT_TOOL_NAME,
            description=(doc or "").strip() or "Give the final answer in the required structure.",
            parameters=schema,
            kind="output",
        )

    def validate_args(self, args: dict[str, Any]) -> OutputT:
        """The answer from the `final_result` tool's arguments."""
        try:
            return self.adapter.validate_python(args["result"] if self.wrapped else args)
        except (ValidationError, KeyError) as e:
            raise OutputValidationError(_errors(e)) from None

    def validate_text(self, text: str) -> OutputT:
        """The answer from plain text holding JSON (a code fence is allowed)."""
        match = _FENCE.search(text)
        raw = (match.group(1) if match else text).strip()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise OutputValidationError(
                [f"call the {OUTPUT_TOOL_NAME!r} tool with the answer instead of plain text"]
            ) from None
        if self.wrapped and not (isinstance(data, dict) and "result" in data):
            data = {"result": data}
        if isinstance(data, dict):
            return self.validate_args(data)
        raise OutputValidationError(["the answer must be a JSON object"])


def _errors(e: Exception) -> list[str]:
    if isinstance(e, ValidationError):
        return [
            f"{'.'.join(str(p) for p in err['loc']) or '(answer)'}: {err['msg']}"
            for err in e.errors(include_url=False)
        ]
    return [f"missing field {e}"]
