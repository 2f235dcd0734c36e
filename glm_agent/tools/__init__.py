"""Tools: definitions bound to implementations and policies, from functions, YAML registries
and MCP servers."""

from glm_agent.tools._bfcl import (
    BfclNames,
    BfclRegistry,
    bfcl_definition,
    bfcl_ground_truth,
    bfcl_schema,
    mutate_arguments,
    registry_from_bfcl,
    validation_schema,
)
from glm_agent.tools._function import function_tool, tool
from glm_agent.tools._http import HttpClientPool, HttpEndpoint
from glm_agent.tools._interop import (
    from_langchain_tools,
    to_langchain_tools,
    to_openai_tools,
    to_tool_definitions,
)
from glm_agent.tools._mcp_client import MCPServer
from glm_agent.tools._mcp_spec import MCPServerSpec
from glm_agent.tools._openapi import openapi_registry_spec, registry_from_openapi
from glm_agent.tools._policy import (
    Identity,
    MemoryPolicyState,
    PerCustomerLimit,
    PolicyState,
    Rule,
)
from glm_agent.tools._registry import ToolRegistry, ToolSource, as_tool
from glm_agent.tools._schema import clean_schema
from glm_agent.tools._tool import (
    RunContext,
    Tool,
    ToolPolicy,
    format_tool_result,
    json_schema_validator,
)
from glm_agent.tools._yaml_loader import YamlToolRegistry, load_registry, registry_from_spec
from glm_agent.tools._yaml_schema import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    EnvironmentOverride,
    HttpBinding,
    HttpSettings,
    RegistryFile,
    ResponseSelector,
    ToolSpec,
)

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "BfclNames",
    "BfclRegistry",
    "EnvironmentOverride",
    "HttpBinding",
    "HttpClientPool",
    "HttpEndpoint",
    "HttpSettings",
    "Identity",
    "MCPServer",
    "MCPServerSpec",
    "MemoryPolicyState",
    "PerCustomerLimit",
    "PolicyState",
    "RegistryFile",
    "ResponseSelector",
    "Rule",
    "RunContext",
    "Tool",
    "ToolPolicy",
    "ToolRegistry",
    "ToolSource",
    "ToolSpec",
    "YamlToolRegistry",
    "as_tool",
    "bfcl_definition",
    "bfcl_ground_truth",
    "bfcl_schema",
    "clean_schema",
    "format_tool_result",
    "from_langchain_tools",
    "function_tool",
    "json_schema_validator",
    "load_registry",
    "mutate_arguments",
    "openapi_registry_spec",
    "registry_from_bfcl",
    "registry_from_openapi",
    "registry_from_spec",
    "to_langchain_tools",
    "to_openai_tools",
    "to_tool_definitions",
    "tool",
    "validation_schema",
]
