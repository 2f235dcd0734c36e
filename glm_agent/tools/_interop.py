"""Registries to and from other formats: OpenAI tool JSON, GLM definitions, LangChain tools."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from glm_agent.exceptions import MissingDependencyError, ModelRetry
from glm_agent.messages import ToolDefinition
from glm_agent.tools._http import HttpEndpoint
from glm_agent.tools._registry import ToolRegistry
from glm_agent.tools._tool import Tool, ToolPolicy, format_tool_result

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool, StructuredTool

__all__ = ["from_langchain_tools", "to_langchain_tools", "to_openai_tools", "to_tool_definitions"]


def to_openai_tools(registry: Iterable[Tool]) -> list[dict[str, Any]]:
    """The tools as an OpenAI `tools` list (`{"type": "function", "function": {...}}`)."""
    return [t.definition.to_openai() for t in registry]


def to_tool_definitions(registry: Iterable[Tool]) -> list[ToolDefinition]:
    """The tools as GLM tool definitions, as `ChatModel.request` takes them."""
    return [t.definition for t in registry]


def _langchain_tools_module() -> Any:
    try:
        import langchain_core.tools as lc_tools
    except ImportError:
        raise MissingDependencyError("langchain-core", "langchain", "LangChain tools") from None
    return lc_tools


def to_langchain_tools(registry: Iterable[Tool]) -> list[StructuredTool]:
    """The tools as LangChain `StructuredTool`s (arguments validated by our tool, then run
    under its policy). Errors meant for the model come back as the tool's text result.
    """
    lc = _langchain_tools_module()
    out: list[StructuredTool] = []
    for t in registry:

        async def arun(_tool: Tool = t, **kwargs: Any) -> str:
            try:
                return format_tool_result(await _tool.run(kwargs))
            except ModelRetry as e:
                raise lc.ToolException(str(e)) from e

        def run(_tool: Tool = t, **kwargs: Any) -> str:
            async def once() -> str:
                try:
                    return await arun(_tool, **kwargs)
                finally:
                    # This loop ends with the call: its pooled connections must not outlive it.
                    if isinstance(_tool.function, HttpEndpoint):
                        await _tool.function.pool.release()

            return asyncio.run(once())

        out.append(
            lc.StructuredTool(
                name=t.name,
                description=t.definition.description,
                args_schema=t.definition.parameters,
                func=run,
                coroutine=arun,
                handle_tool_error=True,
            )
        )
    return out


def from_langchain_tools(
    tools: Iterable[BaseTool], *, policy: ToolPolicy | None = None
) -> ToolRegistry:
    """A registry of LangChain tools (any `BaseTool`), called through `ainvoke`.

    Args:
        tools: The LangChain tools.
        policy: The policy of every imported tool (default: `ToolPolicy()`).
    """
    lc = _langchain_tools_module()
    from langchain_core.utils.function_calling import convert_to_openai_tool

    registry = ToolRegistry()
    for bt in tools:
        definition = ToolDefinition.from_openai(convert_to_openai_tool(bt))

        async def call(_bt: BaseTool = bt, **kwargs: Any) -> Any:
            try:
                return await _bt.ainvoke(kwargs)
            except lc.ToolException as e:
                raise ModelRetry(str(e)) from e

        registry.add(Tool(definition, call, policy=policy))
    return registry
