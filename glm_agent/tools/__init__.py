"""Tools: definitions bound to implementations and policies, from functions or YAML registries."""

from glm_agent.tools._function import function_tool, tool
from glm_agent.tools._registry import ToolRegistry, as_tool
from glm_agent.tools._schema import clean_schema
from glm_agent.tools._tool import (
    RunContext,
    Tool,
    ToolPolicy,
    format_tool_result,
    json_schema_validator,
)

__all__ = [
    "RunContext",
    "Tool",
    "ToolPolicy",
    "ToolRegistry",
    "as_tool",
    "clean_schema",
    "format_tool_result",
    "function_tool",
    "json_schema_validator",
    "tool",
]
