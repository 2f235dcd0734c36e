"""The YAML tool-registry format, as pydantic models (version 1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from glm_agent.tools._mcp_spec import MCPServerSpec
from glm_agent.tools._tool import ToolPolicy

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "EnvironmentOverride",
    "HttpBinding",
    "HttpSettings",
    "RegistryFile",
    "ResponseSelector",
    "ToolSpec",
]


ServerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
"""An MCP server's name in a registry (letters, digits, `_`, `.`, `-`)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BearerAuth(_Strict):
    """`Authorization: Bearer <token>`."""

    type: Literal["bearer"]
    """The kind of authentication."""
    token: str
    """The token; usually `${ENV_VAR}`."""


class BasicAuth(_Strict):
    """HTTP basic authentication."""

    type: Literal["basic"]
    """The kind of authentication."""
    username: str
    """User name."""
    password: str
    """Password; usually `${ENV_VAR}`."""


class ApiKeyAuth(_Strict):
    """An API key sent as a header or a query parameter."""

    type: Literal["api_key"]
    """The kind of authentication."""
    name: str = "X-API-Key"
    """Header or query parameter name."""
    value: str
    """The key; usually `${ENV_VAR}`."""
    location: Literal["header", "query"] = Field(default="header", alias="in")
    """Where the key goes (`in:` in YAML)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseSelector(_Strict):
    """Which part of a JSON response the tool returns. Give one of the two."""

    pointer: str | None = None
    """A JSON pointer (RFC 6901), e.g. `/data/items`."""
    jmespath: str | None = None
    """A JMESPath expression, e.g. `items[].name` (needs `glm-agent[tools]`)."""

    @model_validator(mode="after")
    def _one(self) -> ResponseSelector:
        if (self.pointer is None) == (self.jmespath is None):
            raise ValueError("give exactly one of 'pointer' or 'jmespath'")
        if self.pointer is not None and self.pointer and not self.pointer.startswith("/"):
            raise ValueError(f"a JSON pointer starts with '/', got {self.pointer!r}")
        return self


class HttpBinding(_Strict):
    """A tool implemented by one HTTP request."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    """HTTP method."""
    url: str
    """URL template; `{arg}` is replaced by the URL-quoted argument."""
    query: list[str] | dict[str, str] | None = None
    """Arguments sent as query parameters: names, or `{param: argument}`. Default: the
    arguments not used in the URL, for GET, DELETE and HEAD."""
    body: list[str] | dict[str, str] | None = None
    """Arguments sent as the JSON body: names, or `{field: argument}`. Default: the arguments
    not used in the URL or the query, for POST, PUT and PATCH."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers; `${ENV_VAR}` is replaced when the registry loads."""
    auth: BearerAuth | BasicAuth | ApiKeyAuth | None = Field(default=None, discriminator="type")
    """Authentication."""
    response: ResponseSelector | None = None
    """Part of the JSON response to return (default: all of it)."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds for one request."""
    retries: int = Field(default=2, ge=0)
    """Extra attempts after a timeout or a 5xx answer (only for idempotent tools)."""
    backoff: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; doubled at each next one."""


class HttpSettings(_Strict):
    """Settings shared by a registry's HTTP tools."""

    allowed_hosts: list[str] | None = None
    """Hosts HTTP tools may call (default: the hosts named in the tools' URLs)."""
    max_response_bytes: int = Field(default=1_000_000, gt=0)
    """Larger responses are refused and reported to the model."""
    max_connections: int = Field(default=20, ge=1)
    """Size of the registry's connection pool."""


class ToolSpec(_Strict):
    """One tool of a registry. Give exactly one binding: `python` or `http`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Tool name (`[A-Za-z0-9_-]`, at most 64 characters)."""
    description: str = ""
    """What the tool does, for the model (default for `python` tools: the docstring)."""
    parameters: dict[str, Any] | str | None = None
    """JSON Schema of the arguments, or `package.module:Model` naming a pydantic model.
    Optional for `python` tools (taken from the function)."""
    python: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    """`package.module:function`, found from the registry file's folder or `sys.path`."""
    http: HttpBinding | None = None
    """An HTTP request."""
    policy: ToolPolicy = Field(default_factory=ToolPolicy)
    """Timeout, concurrency, rate limit, approval, idempotency, redaction, identity, ownership,
    rules and per-customer limits."""
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)
    """What the customer is told about this tool, by situation (`confirm`, `done`,
    `refused.<code>`) and language: `{confirm: {zh: "确认取消订单 {order_id}？", en: ...}}`."""

    @model_validator(mode="after")
    def _one_binding(self) -> ToolSpec:
        if (self.python is None) == (self.http is None):
            raise ValueError("give exactly one binding: 'python' or 'http'")
        if self.http is not None and self.parameters is None:
            raise ValueError("an http tool needs 'parameters'")
        return self


class EnvironmentOverride(_Strict):
    """Values that replace the file's own in one environment (merged key by key)."""

    tools: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per tool name, the keys to override (e.g. `{http: {url: ...}}`)."""
    http: dict[str, Any] = Field(default_factory=dict)
    """Overrides of the registry's `http` settings."""
    mcp: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per MCP server name, the keys to override (e.g. `{url: ...}`)."""


class RegistryFile(_Strict):
    """A YAML tool registry. Top-level keys starting with `x-` are ignored: they hold YAML
    anchors shared by several tools (`x-labels: &labels ...`, then `<<: *labels`)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data

    version: Literal[1] = 1
    """Format version."""
    include: list[str] = Field(default_factory=list)
    """Other registry files whose tools are added (paths relative to this file)."""
    http: HttpSettings = Field(default_factory=HttpSettings)
    """Settings of the HTTP tools."""
    tools: list[ToolSpec] = Field(default_factory=list)
    """The tools."""
    mcp: dict[ServerName, MCPServerSpec] = Field(default_factory=dict)
    """MCP servers whose tools join the registry, by name (see `MCPServerSpec`). They start
    when a run first needs them, not when the file is loaded."""
    environments: dict[str, EnvironmentOverride] = Field(default_factory=dict)
    """Overrides selected by `environment=` or `GLM_AGENT_ENV`."""

    def to_yaml(self) -> str:
        """This registry as YAML, defaults left out."""
        data = self.model_dump(mode="json", exclude_defaults=True, by_alias=True)
        data = {"version": self.version, **data}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
