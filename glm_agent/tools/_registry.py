"""`ToolRegistry`: a named set of tools. An object you build, never a global filled at import.

Besides the tools added to it, a registry can hold tool *sources*: objects whose tools are only
known once they are started and may change later (an MCP server lists its tools when it starts
and again when it says its list changed). `await registry.ready()` starts the sources that are
not running yet (every run does it first); the registry's view (`names`, `get`, `definitions`)
then holds their current tools beside its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, overload, runtime_checkable

from glm_agent.exceptions import DuplicateToolError, UnknownToolError, UserError
from glm_agent.messages import ToolDefinition
from glm_agent.tools._function import function_tool
from glm_agent.tools._tool import Tool

__all__ = ["ToolRegistry", "ToolSource", "as_tool"]


@runtime_checkable
class ToolSource(Protocol):
    """Tools known once started, which may change while running (an MCP server)."""

    @property
    def name(self) -> str:
        """The source's name, unique in a registry (used in error messages)."""
        ...

    @property
    def tools(self) -> Mapping[str, Tool]:
        """The current tools by the name the model sees (empty until started). Replaced as a
        whole when they change, never mutated in place."""
        ...

    @property
    def running(self) -> bool:
        """Whether it is started and alive (`start` would do nothing)."""
        ...

    async def start(self) -> None:
        """Start the source if it is not running (cheap when it is) and list its tools."""
        ...

    async def aclose(self) -> None:
        """Stop the source; a later `start` starts it again."""
        ...


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
        tools: Tools, typed functions to turn into tools, or tool sources (MCP servers).
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any] | ToolSource] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._sources: dict[str, ToolSource] = {}
        self._changes = 0
        self._view_key: tuple[object, ...] | None = None
        self._view: dict[str, Tool] = {}
        for t in tools:
            if isinstance(t, Tool) or not isinstance(t, ToolSource):
                self.add(t)
            else:
                self.add_source(t)

    def add(self, obj: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a typed function); raises `DuplicateToolError` on a taken name."""
        t = as_tool(obj)
        if t.name in self._tools and not replace:
            raise DuplicateToolError(t.name)
        self._tools[t.name] = t
        self._changes += 1
        return t

    def add_source(self, source: ToolSource) -> ToolSource:
        """Add a tool source (an `MCPServer`); its tools join the registry once it is started."""
        if source.name in self._sources and self._sources[source.name] is not source:
            raise UserError(
                f"two tool sources are named {source.name!r}; names must be unique in a registry"
            )
        self._sources[source.name] = source
        self._changes += 1
        return source

    @property
    def tool_sources(self) -> list[ToolSource]:
        """The tool sources, in the order they were added."""
        return list(self._sources.values())

    async def ready(self) -> None:
        """Start every tool source that is not running (at once), then check that no two tools
        share a name. Cheap when all are running: every run calls it before its first turn.

        Raises:
            ToolServerError: A source could not be started.
            DuplicateToolError: Two tools share a name (naming where each comes from).
        """
        stopped = [s for s in self._sources.values() if not s.running]
        if stopped:  # started together; a run over running sources pays nothing here
            await asyncio.gather(*(s.start() for s in stopped))
        self._offered()

    async def aclose(self) -> None:
        """Stop every tool source (each starts again on the next `ready`)."""
        for source in list(self._sources.values()):
            await source.aclose()

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
        """Add every tool of `other` (and, for a registry, its tool sources); a name taken twice
        is an error."""
        if isinstance(other, ToolRegistry):
            for own in other._tools.values():
                self.add(own)
            for source in other.tool_sources:
                self.add_source(source)
            return
        for t in other:
            self.add(t)

    def remove(self, name: str) -> Tool:
        """Remove and return a tool (not one of a source's)."""
        tool = self.get(name)
        if name not in self._tools:
            raise UserError(f"tool {name!r} comes from a tool source and cannot be removed")
        del self._tools[name]
        self._changes += 1
        return tool

    def _offered(self) -> dict[str, Tool]:
        """The registry's own tools and the sources' current ones, rebuilt when any changed."""
        if not self._sources:
            return self._tools
        key = (self._changes, *(id(s.tools) for s in self._sources.values()))
        if key == self._view_key:
            return self._view
        view = dict(self._tools)
        owner = dict.fromkeys(self._tools, "the registry's own tools")
        for source in self._sources.values():
            for name, tool in source.tools.items():
                here = f"MCP server {source.name!r}"
                if name in view:
                    raise DuplicateToolError(name, owners=[owner[name], here])
                view[name], owner[name] = tool, here
        self._view, self._view_key = view, key
        return view

    def get(self, name: str) -> Tool:
        """The tool called `name`; raises `UnknownToolError` with a did-you-mean."""
        tools = self._offered()
        try:
            return tools[name]
        except KeyError:
            raise UnknownToolError(name, list(tools)) from None

    @property
    def names(self) -> list[str]:
        """Tool names in insertion order (the sources' after the registry's own)."""
        return list(self._offered())

    def definitions(self) -> list[ToolDefinition]:
        """Definitions for the model, in insertion order."""
        return [t.definition for t in self._offered().values()]

    def __contains__(self, name: object) -> bool:
        return name in self._offered()

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._offered().values()))

    def __len__(self) -> int:
        return len(self._offered())

    def __repr__(self) -> str:
        sources = f", sources={list(self._sources)}" if self._sources else ""
        return f"ToolRegistry({list(self._tools)}{sources})"
