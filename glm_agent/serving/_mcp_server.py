"""glm-agent as an MCP server: a tool registry's tools, agents (one tool each, running the agent
with its memory and knowledge) and knowledge bases (a search tool each, and their documents as
resources), on the official `mcp` SDK's low-level `Server`.

The tenant of a call is the one of the API key that made it (HTTP, see `_mcp_http`), or the
server's default tenant (stdio): agent sessions and knowledge searches are scoped to it. Tools
that need approval are not offered: no one could approve a call made over MCP.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from glm_agent._knowledge import CONTEXT_HEADER, tenant_filter
from glm_agent.exceptions import ModelRetry, UserError
from glm_agent.tools import RunContext, ToolRegistry, format_tool_result

if TYPE_CHECKING:
    from mcp.server import Server

    from glm_agent.agent import Agent

__all__ = ["MCPExposure", "mcp_server"]

DEFAULT_TENANT = "default"
_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class _Entry:
    description: str
    schema: dict[str, Any]
    call: Callable[[dict[str, Any], str], Awaitable[tuple[str, Any]]]
    """(arguments, tenant) -> (text, structured content or None)."""


def _agent_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "message": {"type": "string", "description": "What to ask or tell the agent."},
            "session_id": {
                "type": "string",
                "description": "Continue this conversation (the agent remembers it); omit it "
                "for a one-off question.",
            },
        },
        "required": ["message"],
    }


def _search_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
        },
        "required": ["query"],
    }


@dataclass
class MCPExposure:
    """What an MCP server offers.

    Attributes:
        tools: A tool registry whose tools are offered as they are (its own MCP servers too).
        agents: Agents, each offered as one tool named after it.
        knowledge: Knowledge bases by name: a `search_<name>` tool each, and their documents as
            resources (`kb://<name>/<source>`).
        default_tenant: The tenant of calls that carry none (stdio).
    """

    tools: ToolRegistry | None = None
    agents: Sequence[Agent[Any]] = ()
    knowledge: Mapping[str, Any] | None = None
    default_tenant: str = DEFAULT_TENANT

    async def entries(self) -> dict[str, _Entry]:
        """Every tool offered, by name; a name offered twice is an error naming both."""
        out: dict[str, _Entry] = {}
        owner: dict[str, str] = {}

        def put(name: str, entry: _Entry, what: str) -> None:
            if name in out:
                raise UserError(f"the MCP tool name {name!r} is taken by {owner[name]} and {what}")
            out[name], owner[name] = entry, what

        if self.tools is not None:
            await self.tools.ready()
            for tool in self.tools:
                if not tool.policy.requires_approval:
                    put(tool.name, self._tool_entry(tool.name), "a tool of the registry")
        for agent in self.agents:
            name = _NAME.sub("_", agent.name)
            about = f"Ask the {agent.name!r} agent; it answers with its own tools and knowledge."
            put(name, _Entry(about, _agent_schema(), self._agent_call(agent)), f"agent {name!r}")
        for kb_name, kb in (self.knowledge or {}).items():
            name = "search_" + _NAME.sub("_", kb_name)
            about = f"Search the {kb_name!r} knowledge base; passages come with their sources."
            put(name, _Entry(about, _search_schema(), self._search_call(kb)), f"knowledge {name!r}")
        return out

    def _tool_entry(self, name: str) -> _Entry:
        assert self.tools is not None
        registry = self.tools
        tool = registry.get(name)

        async def call(args: dict[str, Any], tenant: str) -> tuple[str, Any]:
            ctx: RunContext[Any] = RunContext(deps=None, tenant=tenant, tool_name=name)
            try:
                value = await registry.get(name).run(args, ctx)
            except TimeoutError:
                raise ModelRetry(
                    f"tool {name!r} timed out after {tool.policy.timeout:g} s"
                ) from None
            return format_tool_result(value), value if isinstance(value, dict) else None

        return _Entry(tool.definition.description, tool.definition.parameters, call)

    @staticmethod
    def _agent_call(agent: Agent[Any]) -> Callable[[dict[str, Any], str], Awaitable[Any]]:
        async def call(args: dict[str, Any], tenant: str) -> tuple[str, Any]:
            session = args.get("session_id")
            result = await agent.arun(args["message"], session_id=session, tenant=tenant)
            if result.status == "deferred":
                names = ", ".join(c.name for c in result.deferred_calls)
                raise ModelRetry(
                    f"the agent wants to call {names}, which needs approval; it cannot be "
                    "approved over MCP"
                )
            text = format_tool_result(result.output)
            return text, {"answer": text, "session_id": session}

        return call

    @staticmethod
    def _search_call(kb: Any) -> Callable[[dict[str, Any], str], Awaitable[Any]]:
        async def call(args: dict[str, Any], tenant: str) -> tuple[str, Any]:
            hits = await kb.asearch(
                args["query"], k=int(args.get("k", 5)), filters=tenant_filter(tenant)
            )
            if not hits:
                return "No passage in the knowledge base matches this query.", {"hits": []}
            found = [
                {
                    "text": h.text,
                    "score": h.score,
                    "source": h.citation.source,
                    "title": h.citation.title,
                    "page": h.citation.page,
                }
                for h in hits
            ]
            return CONTEXT_HEADER + "\n\n" + kb.format_context(hits), {"hits": found}

        return call

    async def aclose(self) -> None:
        """Stop what the exposed parts hold: the registry's MCP servers, the agents' models,
        tools and stores."""
        if self.tools is not None:
            await self.tools.aclose()
        for agent in self.agents:
            await agent.aclose()

    def resources(self, tenant: str) -> list[tuple[str, str, str]]:
        """The knowledge bases' documents the tenant may read: (uri, title, source)."""
        out = []
        for kb_name, kb in (self.knowledge or {}).items():
            for doc in kb.documents(tenant_filter(tenant)):
                uri = f"kb://{quote(kb_name, safe='')}/{quote(doc['source'], safe='')}"
                out.append((uri, doc["title"] or doc["source"], doc["source"]))
        return out

    def read(self, uri: str, tenant: str) -> str | None:
        """The text of a `kb://` resource, if it exists and the tenant may read it."""
        if not uri.startswith("kb://") or "/" not in uri[5:]:
            return None
        kb_name, source = (unquote(p) for p in uri[5:].split("/", 1))
        kb = (self.knowledge or {}).get(kb_name)
        if kb is None:
            return None
        text: str | None = kb.document_text(source, tenant_filter(tenant))
        return text


def _tenant(ctx: Any, default: str) -> str:
    """The tenant an HTTP request was authenticated as (set by `_mcp_http`), else `default`."""
    request = getattr(ctx, "request", None)
    state = getattr(request, "state", None)
    return str(getattr(state, "tenant", None) or default)


def mcp_server(exposure: MCPExposure, *, name: str = "glm-agent") -> Server[Any]:
    """The MCP server offering `exposure` (run it over stdio or Streamable HTTP).

    Raises:
        MissingDependencyError: The `mcp` package is not installed.
    """
    try:
        import mcp.types as types
        from mcp import MCPError
        from mcp.server import Server
    except ImportError as e:
        from glm_agent.exceptions import MissingDependencyError

        raise MissingDependencyError(e.name or "mcp", "mcp", "the MCP server") from None
    from mcp_types import INVALID_PARAMS

    from glm_agent import __version__

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        entries = await exposure.entries()
        return types.ListToolsResult(
            tools=[
                types.Tool(name=n, description=e.description, input_schema=e.schema)
                for n, e in entries.items()
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        entries = await exposure.entries()
        entry = entries.get(params.name)
        if entry is None:
            raise MCPError(
                INVALID_PARAMS, f"unknown tool {params.name!r}; tools: {', '.join(entries)}"
            )
        tenant = _tenant(ctx, exposure.default_tenant)
        try:
            text, structured = await entry.call(dict(params.arguments or {}), tenant)
        except ModelRetry as e:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=e.message)], is_error=True
            )
        except Exception as e:  # as the agent loop tells the model: the call failed, and why
            text = f"tool {params.name!r} failed: {type(e).__name__}: {e}"
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=structured
        )

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        tenant = _tenant(ctx, exposure.default_tenant)
        return types.ListResourcesResult(
            resources=[
                types.Resource(uri=uri, name=title, description=source, mime_type="text/plain")
                for uri, title, source in exposure.resources(tenant)
            ]
        )

    async def read_resource(
        ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        text = exposure.read(str(params.uri), _tenant(ctx, exposure.default_tenant))
        if text is None:
            raise MCPError(INVALID_PARAMS, f"no such resource: {params.uri}")
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(uri=str(params.uri), text=text, mime_type="text/plain")
            ]
        )

    has_kb = bool(exposure.knowledge)
    return Server(
        name,
        version=__version__,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources if has_kb else None,
        on_read_resource=read_resource if has_kb else None,
    )
