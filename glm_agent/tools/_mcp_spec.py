"""How to reach an MCP server and which of its tools to offer: the `mcp:` entries of YAML tool
registries and agent.yaml files, as a pydantic model (no MCP SDK needed to read one)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from glm_agent.tools._tool import ToolPolicy

__all__ = ["MCPServerSpec", "merged_policy"]

Transport = Literal["stdio", "streamable-http", "sse"]


class MCPServerSpec(BaseModel):
    """One MCP server: a command to start (stdio) or a URL to reach (Streamable HTTP or SSE).

    ```yaml
    mcp:
      files:                                   # the server's name
        command: npx
        args: [-y, "@modelcontextprotocol/server-filesystem", ./data]
        prefix: files                          # its tools become files_read_file, ...
        allowed_tools: [read_file, list_directory]
        policy: {timeout: 10}
        policies: {read_file: {max_concurrency: 4}}
      search:
        url: https://search.example.com/mcp    # .../sse means the older SSE transport
        headers: {Authorization: "Bearer ${SEARCH_TOKEN}"}
    ```
    """

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    """The program that runs the server over stdio (found on PATH, or a path)."""
    args: list[str] = Field(default_factory=list)
    """Its arguments."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables set for it, over a safe default set (PATH, HOME, ...)."""
    cwd: str | None = None
    """Its working directory (relative to the file that names it)."""
    url: str | None = None
    """The endpoint of a server reached over HTTP."""
    transport: Transport | None = None
    """`stdio` (with `command`), `streamable-http` or `sse` (with `url`); default: `stdio` for a
    command, `sse` for a URL whose path ends in `/sse`, else `streamable-http`."""
    headers: dict[str, str] = Field(default_factory=dict)
    """HTTP headers sent with every request (`${ENV}` for secrets)."""
    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    """Put before each tool name, with `_`: `prefix: files` offers `read_file` as
    `files_read_file`. Use it when two servers (or a server and the registry) share a name."""
    allowed_tools: list[str] | None = None
    """Offer only these of the server's tools (by the server's names); default: all."""
    policy: ToolPolicy = Field(default_factory=ToolPolicy)
    """The policy of every tool of this server (timeout, retries, approval, rate limit...)."""
    policies: dict[str, ToolPolicy] = Field(default_factory=dict)
    """Per tool (by the server's name), the policy keys that differ from `policy`."""
    startup_timeout: float = Field(default=30.0, gt=0)
    """Seconds to start (or reach) the server and list its tools."""

    @model_validator(mode="after")
    def _one_way(self) -> MCPServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' (stdio) or 'url' (HTTP)")
        if self.command is not None and self.transport not in (None, "stdio"):
            raise ValueError(f"transport {self.transport!r} needs a 'url', not a 'command'")
        if self.url is not None:
            if self.transport == "stdio":
                raise ValueError("transport 'stdio' needs a 'command', not a 'url'")
            if "${" not in self.url and not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        return self

    @property
    def kind(self) -> Transport:
        """The transport used (explicit, or inferred from `command` / `url`)."""
        if self.transport is not None:
            return self.transport
        if self.command is not None:
            return "stdio"
        assert self.url is not None
        path = self.url.split("?", 1)[0].rstrip("/")
        return "sse" if path.endswith("/sse") else "streamable-http"

    def describe(self) -> str:
        """How the server is reached, for messages: the command line or the URL."""
        if self.command is not None:
            return " ".join([self.command, *self.args])
        return f"{self.url} ({self.kind})"

    def exposed_name(self, remote: str) -> str:
        """The name the model sees for the server's tool `remote`: the prefix put before it, and
        characters models refuse in tool names (anything but letters, digits, `_`, `-`) as `_`."""
        name = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in remote)
        return f"{self.prefix}_{name}" if self.prefix else name


def merged_policy(spec: MCPServerSpec, remote: str) -> ToolPolicy:
    """The policy of tool `remote`: the server's `policy` with the keys its `policies` entry set."""
    own = spec.policies.get(remote)
    if own is None:
        return spec.policy
    update: dict[str, Any] = {k: getattr(own, k) for k in own.model_fields_set}
    return spec.policy.model_copy(update=update)
