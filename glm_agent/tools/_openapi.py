"""OpenAPI 3 documents as registries of HTTP tools (one tool per operation)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from glm_agent.exceptions import ToolDefinitionError
from glm_agent.tools._tool import ToolPolicy
from glm_agent.tools._yaml_loader import YamlToolRegistry, registry_from_spec
from glm_agent.tools._yaml_schema import HttpBinding, HttpSettings, RegistryFile, ToolSpec

__all__ = ["openapi_registry_spec", "registry_from_openapi"]

_METHODS = ("get", "post", "put", "patch", "delete", "head")
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE"}
_MAX_DEPTH = 12


def _tool_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:64] or "operation"


def _resolve(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """`node` with local `$ref`s inlined (recursive ones cut off at a fixed depth as `{}`)."""
    if isinstance(node, list):
        return [_resolve(doc, x, depth) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if depth >= _MAX_DEPTH:
            return {}
        if not ref.startswith("#/"):
            raise ToolDefinitionError(f"only local $refs are supported, got {ref!r}")
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise ToolDefinitionError(f"unresolvable $ref {ref!r}")
            target = target[part]
        return _resolve(doc, target, depth + 1)
    return {k: _resolve(doc, v, depth) for k, v in node.items()}


def _operation(
    doc: dict[str, Any], base_url: str, path: str, method: str, item: dict[str, Any]
) -> ToolSpec:
    op = _resolve(doc, item[method])
    name = _tool_name(op.get("operationId") or f"{method}_{path}")
    params = [*_resolve(doc, item.get("parameters", [])), *op.get("parameters", [])]
    properties: dict[str, Any] = {}
    required: list[str] = []
    query: list[str] = []
    for p in params:
        where = p.get("in")
        if where not in ("path", "query"):
            continue  # headers and cookies are the registry's business (auth, headers:)
        schema = dict(p.get("schema") or {})
        if p.get("description"):
            schema.setdefault("description", p["description"])
        properties[p["name"]] = schema
        if where == "query":
            query.append(p["name"])
        if p.get("required") or where == "path":
            required.append(p["name"])
    body: dict[str, str] = {}
    content = (op.get("requestBody") or {}).get("content") or {}
    if content:
        media = content.get("application/json")
        if media is None:
            raise ToolDefinitionError(
                f"{name}: only application/json request bodies are supported, "
                f"got {', '.join(content)}"
            )
        schema = media.get("schema") or {}
        if schema.get("type", "object") != "object" or "properties" not in schema:
            raise ToolDefinitionError(f"{name}: the JSON request body must be an object schema")
        for field, field_schema in schema["properties"].items():
            arg = field if field not in properties else f"body_{field}"
            properties[arg] = field_schema
            body[field] = arg
            if field in schema.get("required", []) and op["requestBody"].get("required", True):
                required.append(arg)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = list(dict.fromkeys(required))
    description = "\n\n".join(s for s in (op.get("summary"), op.get("description")) if s)
    return ToolSpec(
        name=name,
        description=description or f"{method.upper()} {path}",
        parameters=parameters,
        http=HttpBinding(
            method=method.upper(),  # type: ignore[arg-type]
            url=base_url.rstrip("/") + path,
            query=query,
            body=body if body or method in ("post", "put", "patch") else None,
        ),
        policy=ToolPolicy(idempotent=method.upper() in _IDEMPOTENT),
    )


def openapi_registry_spec(
    document: Mapping[str, Any],
    *,
    base_url: str | None = None,
    allowed_hosts: list[str] | None = None,
    strict: bool = False,
) -> RegistryFile:
    """A registry of HTTP tools, one per operation of an OpenAPI 3 document.

    `operationId` names the tool; path and query parameters and the properties of a JSON
    request body become its parameters. Write it out with `.to_yaml()`.

    Args:
        document: The OpenAPI document (parsed JSON or YAML).
        base_url: Server URL (default: the document's first `servers` entry).
        allowed_hosts: The registry's host allow-list (default: the server's host).
        strict: Raise on an operation that cannot be a tool instead of leaving it out.

    Raises:
        ToolDefinitionError: Not an OpenAPI 3 document, no server URL, or (when `strict`) an
            unsupported operation.
    """
    doc = dict(document)
    if not str(doc.get("openapi", "")).startswith("3"):
        raise ToolDefinitionError("not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    servers = doc.get("servers") or []
    url = base_url or (servers[0].get("url") if servers else None)
    if not url or not url.startswith(("http://", "https://")):
        raise ToolDefinitionError(
            "no absolute server URL: pass base_url= or add one to the document's 'servers'"
        )
    tools: list[ToolSpec] = []
    for path, item in (doc.get("paths") or {}).items():
        for method in _METHODS:
            if method in item:
                try:
                    tools.append(_operation(doc, url, path, method, item))
                except ToolDefinitionError:
                    if strict:
                        raise
    return RegistryFile(
        http=HttpSettings(allowed_hosts=allowed_hosts or [httpx.URL(url).host]), tools=tools
    )


def registry_from_openapi(
    document: Mapping[str, Any],
    *,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> YamlToolRegistry:
    """A registry of HTTP tools built from an OpenAPI 3 document (see `openapi_registry_spec`)."""
    spec = openapi_registry_spec(document, base_url=base_url)
    return registry_from_spec(spec, base_dir=Path.cwd(), env=env, transport=transport)
