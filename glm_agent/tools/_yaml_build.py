"""Tools from validated registry entries: Python and HTTP bindings, secrets, schema checks."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from pydantic import BaseModel, ValidationError

from glm_agent._yaml_source import ENV_VAR, KeyPath, YamlSource
from glm_agent.exceptions import ConfigError, ToolDefinitionError
from glm_agent.messages import ToolDefinition
from glm_agent.tools._function import function_tool, pydantic_errors
from glm_agent.tools._http import HttpClientPool, HttpEndpoint, check_binding
from glm_agent.tools._schema import clean_schema
from glm_agent.tools._tool import ArgsValidator, Tool, json_schema_validator
from glm_agent.tools._yaml_schema import ApiKeyAuth, BasicAuth, BearerAuth, HttpBinding, ToolSpec

__all__ = ["ToolEntry", "build_tool", "check_environment", "schema_differences"]


@dataclass
class ToolEntry:
    """One validated tool spec and where it was written."""

    spec: ToolSpec
    source: YamlSource
    where: KeyPath
    """Key path of the tool in its file, e.g. `("tools", 2)`."""

    def error(self, message: str, *keys: str | int) -> ConfigError:
        return self.source.error(f"tool {self.spec.name!r}: {message}", (*self.where, *keys))

    @property
    def base_dir(self) -> Path:
        return Path(self.source.path).resolve().parent


def import_object(spec: str, base_dir: Path) -> Any:
    """`package.module:attr` imported from `base_dir` first, then `sys.path`.

    Raises:
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute (message lists what it has).
    """
    module_name, _, attr = spec.partition(":")
    folder = str(base_dir)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(folder)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(obj) if not n.startswith("_"))
            raise AttributeError(f"{module_name!r} has no {part!r}; it has: {', '.join(public)}")
        obj = getattr(obj, part)
    return obj


def _types(schema: Any) -> set[str]:
    """JSON types a schema allows (empty: any), ignoring null (optionality is `required`'s job)."""
    if not isinstance(schema, dict):
        return set()
    out: set[str] = set()
    t = schema.get("type")
    if isinstance(t, str):
        out.add(t)
    elif isinstance(t, list):
        out.update(x for x in t if isinstance(x, str))
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            sub_types = _types(sub)
            if not sub_types and sub.get("type") != "null":
                return set()
            out |= sub_types
    if "enum" in schema and not out:
        names = {bool: "boolean", int: "integer", float: "number", str: "string"}
        out = {names.get(type(v), "any") for v in schema["enum"] if v is not None}
        if "any" in out:
            return set()
    return out - {"null"}


def schema_differences(declared: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """How the YAML's parameter schema and a function's own schema disagree (empty: they agree)."""
    diffs: list[str] = []
    yp: dict[str, Any] = declared.get("properties", {})
    fp: dict[str, Any] = actual.get("properties", {})
    if only := [p for p in yp if p not in fp]:
        diffs.append(f"in the YAML but not the function: {', '.join(only)}")
    if only := [p for p in fp if p not in yp]:
        diffs.append(f"in the function but not the YAML: {', '.join(only)}")
    yr, fr = set(declared.get("required", [])), set(actual.get("required", []))
    if yr != fr:
        diffs.append(f"required: YAML {sorted(yr)}, function {sorted(fr)}")
    for p in yp:
        if p in fp:
            yt, ft = _types(yp[p]), _types(fp[p])
            if yt and ft and yt != ft:
                diffs.append(
                    f"{p}: type {'|'.join(sorted(yt))} in the YAML, "
                    f"{'|'.join(sorted(ft))} in the function"
                )
    return diffs


def _model_schema(entry: ToolEntry, path: str) -> tuple[dict[str, Any], ArgsValidator]:
    try:
        model = import_object(
            path if ":" in path else ":".join(path.rsplit(".", 1)), entry.base_dir
        )
    except (ImportError, AttributeError, ValueError) as e:
        raise entry.error(f"cannot import the parameters model {path!r}: {e}", "parameters") from e
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise entry.error(f"{path!r} is not a pydantic model", "parameters")
    name = entry.spec.name

    def validate(args: dict[str, Any]) -> dict[str, Any]:
        try:
            parsed = model.model_validate(args)
        except ValidationError as e:
            raise pydantic_errors(name, e) from None
        return {k: v for k, v in parsed.model_dump(mode="json").items() if v is not None}

    return clean_schema(model.model_json_schema()), validate


def _json_schema(entry: ToolEntry, schema: dict[str, Any]) -> ArgsValidator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.path) or "(root)"
        raise entry.error(
            f"invalid JSON Schema at {where}: {e.message}", "parameters", *e.path
        ) from None
    if schema.get("type") != "object":
        raise entry.error("parameters must be a JSON Schema with type: object", "parameters")
    return json_schema_validator(schema, entry.spec.name)


def _parameters(entry: ToolEntry) -> tuple[dict[str, Any] | None, ArgsValidator | None]:
    p = entry.spec.parameters
    if p is None:
        return None, None
    if isinstance(p, str):
        return _model_schema(entry, p)
    return p, _json_schema(entry, p)


def _python_tool(entry: ToolEntry) -> Tool:
    spec = entry.spec
    assert spec.python is not None
    try:
        fn = import_object(spec.python, entry.base_dir)
    except (ImportError, AttributeError) as e:
        raise entry.error(
            f"cannot import {spec.python!r} (looked in {entry.base_dir} and sys.path): {e}",
            "python",
        ) from e
    if not callable(fn):
        raise entry.error(f"{spec.python!r} is not callable", "python")
    try:
        ft = function_tool(fn, name=spec.name, policy=spec.policy, require_docs=False)
    except ToolDefinitionError as e:
        raise entry.error(str(e), "python") from e
    schema, validate = _parameters(entry)
    if schema is None:
        schema = ft.definition.parameters
        validator = ft.validator
    else:
        if diffs := schema_differences(schema, ft.definition.parameters):
            raise entry.error(
                f"parameters disagree with {spec.python}'s signature: " + "; ".join(diffs),
                "parameters",
            )
        assert validate is not None
        fn_validate = ft.validator

        def validator(args: dict[str, Any]) -> dict[str, Any]:
            return fn_validate(validate(args))

    description = spec.description or ft.definition.description
    if not description:
        raise entry.error("no description: add 'description' or a docstring", "description")
    definition = ToolDefinition(
        name=spec.name, description=description, parameters=schema, templates=spec.templates
    )
    return Tool(
        definition,
        ft.function,
        validator=validator,
        policy=spec.policy,
        takes_ctx=ft.takes_ctx,
        facts=_facts_function(entry),
    )


def _facts_function(entry: ToolEntry) -> Any:
    """The policy's `facts` function, imported like a python binding (None when not given)."""
    spec = entry.spec.policy.facts
    if spec is None:
        return None
    try:
        fn = import_object(spec, entry.base_dir)
    except (ImportError, AttributeError) as e:
        raise entry.error(
            f"cannot import the facts function {spec!r}: {e}", "policy", "facts"
        ) from e
    if not callable(fn):
        raise entry.error(f"{spec!r} is not callable", "policy", "facts")
    return fn


def _substitute(
    binding: HttpBinding, env: Mapping[str, str]
) -> tuple[HttpBinding, list[tuple[str, KeyPath]]]:
    """The binding with `${VAR}`s replaced, and the missing variables with their keys."""
    missing: list[tuple[str, KeyPath]] = []

    def sub(text: str, *keys: str | int) -> str:
        def one(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is None:
                missing.append((name, keys))
            return default or ""

        return ENV_VAR.sub(one, text)

    update: dict[str, Any] = {
        "url": sub(binding.url, "url"),
        "headers": {k: sub(v, "headers", k) for k, v in binding.headers.items()},
    }
    auth = binding.auth
    if isinstance(auth, BearerAuth):
        update["auth"] = auth.model_copy(update={"token": sub(auth.token, "auth", "token")})
    elif isinstance(auth, BasicAuth):
        update["auth"] = auth.model_copy(
            update={
                "username": sub(auth.username, "auth", "username"),
                "password": sub(auth.password, "auth", "password"),
            }
        )
    elif isinstance(auth, ApiKeyAuth):
        update["auth"] = auth.model_copy(update={"value": sub(auth.value, "auth", "value")})
    return binding.model_copy(update=update), missing


def check_environment(entries: list[ToolEntry], env: Mapping[str, str]) -> None:
    """Raise one `ConfigError` naming every `${VAR}` the registry uses that `env` lacks (at the
    first place one is used), so that a deploy learns all of them at once."""
    missing: list[tuple[str, ToolEntry, KeyPath]] = []
    for entry in entries:
        if entry.spec.http is not None:
            _, gaps = _substitute(entry.spec.http, env)
            missing += [(name, entry, keys) for name, keys in gaps]
    if missing:
        names = ", ".join(dict.fromkeys(n for n, _, _ in missing))
        tools = ", ".join(dict.fromkeys(e.spec.name for _, e, _ in missing))
        _, first, keys = missing[0]
        raise first.source.error(
            f"missing environment variable(s): {names} (used by: {tools})",
            (*first.where, "http", *keys),
        )


def _http_tool(
    entry: ToolEntry, pool: HttpClientPool, env: Mapping[str, str], allow_listed: bool
) -> Tool:
    spec = entry.spec
    assert spec.http is not None
    binding, missing = _substitute(spec.http, env)
    if missing:
        check_environment([entry], env)
    schema, validate = _parameters(entry)
    assert schema is not None and validate is not None
    for key, problem in check_binding(binding, schema.get("properties", {})):
        raise entry.error(problem, "http", key)
    host = (urlsplit(binding.url).hostname or "").lower()
    if allow_listed and host not in pool.allowed_hosts:
        allowed = ", ".join(sorted(pool.allowed_hosts)) or "(none)"
        raise entry.error(f"host {host!r} is not in http.allowed_hosts: {allowed}", "http", "url")
    pool.allow(host)
    endpoint = HttpEndpoint(spec.name, binding, pool, idempotent=spec.policy.idempotent)
    definition = ToolDefinition(
        name=spec.name,
        description=spec.description,
        parameters=schema,
        templates=spec.templates,
    )
    return Tool(
        definition, endpoint, validator=validate, policy=spec.policy, facts=_facts_function(entry)
    )


def build_tool(
    entry: ToolEntry,
    pool: HttpClientPool,
    *,
    env: Mapping[str, str] | None = None,
    allow_listed: bool = False,
) -> Tool:
    """The `Tool` of one registry entry.

    Args:
        entry: The validated spec and where it was written.
        pool: The registry's HTTP client (HTTP tools add their host to its allow-list unless
            `allow_listed`, when a host not already on it is an error).
        env: Environment variables for `${VAR}` (default: `os.environ`).
        allow_listed: Whether the registry declared its `allowed_hosts`.

    Raises:
        ConfigError: Naming the file, line and key of the problem.
    """
    if entry.spec.python is not None:
        return _python_tool(entry)
    return _http_tool(entry, pool, os.environ if env is None else env, allow_listed)
