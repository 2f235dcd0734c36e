"""`ToolRegistry`: a named set of tools. An object you build, never a global filled at import."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, overload

from glm_agent.exceptions import DuplicateToolError, UnknownToolError
from glm_agent.messages import ToolDefinition
from glm_agent.tools._function import function_tool
from glm_agent.tools._tool import Tool

__all__ = ["ToolRegistry", "as_tool"]


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """A `Tool` as it is, or a plain typed function turned into one."""
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return function_tool(obj)
    raise TypeError(f"not a tool or a function: {obj!r}")


class ToolRegistry:
    """Tools by name. Duplicate names are an error.

    Args:
        tools: Tools, or typed functions to turn into tools.
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, obj: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a typed function); raises `DuplicateToolError` on a taken name."""
        t = as_tool(obj)
        if t.name in self._tools and not replace:
            raise DuplicateToolError(t.name)
        self._tools[t.name] = t
        return t

    @overload
    def register(self, fn: Callable[..., Any], /) -> Tool: ...

    @overload
    def register(self, /, **kwargs: Any) -> Callable[[Callable[..., Any]], Tool]: ...

    def register(
        self, fn: Callable[..., Any] | None = None, /, **kwargs: Any
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Decorator form of `add`: `@registry.register` or `@registry.register(timeout=5)`."""
        from glm_agent.tools._function import tool

        if fn is not None:
            return self.add(fn)

        def decorate(f: Callable[..., Any]) -> Tool:
            return self.add(tool(**kwargs)(f))

        return decorate

    def update(self, other: ToolRegistry | Iterable[Tool | Callable[..., Any]]) -> None:
        """Add every tool of `other`; a name taken twice is an error."""
        for t in other:
            self.add(t)

    def remove(self, name: str) -> Tool:
        """Remove and return a tool."""
        tool = self.get(name)
        del self._tools[name]
        return tool

    def get(self, name: str) -> Tool:
        """The tool called `name`; raises `UnknownToolError` with a did-you-mean."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, list(self._tools)) from None

    @property
    def names(self) -> list[str]:
        """Tool names in insertion order."""
        return list(self._tools)

    def definitions(self) -> list[ToolDefinition]:
        """Definitions for the model, in insertion order."""
        return [t.definition for t in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names})"
