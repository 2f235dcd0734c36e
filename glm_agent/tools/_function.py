"""`@tool`: tools from typed Python functions, schemas from type hints and Google docstrings."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from glm_agent.exceptions import ToolArgumentsError, ToolDefinitionError
from glm_agent.messages import ToolDefinition
from glm_agent.tools._policy import PerCustomerLimit, Rule
from glm_agent.tools._schema import clean_schema
from glm_agent.tools._tool import RunContext, Tool, ToolPolicy

__all__ = ["function_tool", "tool"]


def _is_run_context(annotation: Any) -> bool:
    return annotation is RunContext or get_origin(annotation) is RunContext


def _has_description(annotation: Any) -> bool:
    if get_origin(annotation) is typing.Annotated:
        return any(isinstance(a, FieldInfo) and a.description for a in get_args(annotation)[1:])
    return False


def pydantic_errors(tool_name: str, error: ValidationError) -> ToolArgumentsError:
    """A pydantic validation error as a `ToolArgumentsError` naming each argument."""
    msgs = []
    for e in error.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "missing":
            msgs.append(f"missing required argument: {loc!r}")
        elif e["type"] == "extra_forbidden":
            msgs.append(f"unexpected argument: {loc!r}")
        else:
            msgs.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
    return ToolArgumentsError(tool_name, msgs)


def function_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    policy: ToolPolicy | None = None,
    require_docs: bool = True,
    facts: Callable[..., Any] | None = None,
    templates: dict[str, dict[str, str]] | None = None,
) -> Tool:
    """Build a `Tool` from a typed function.

    Args:
        fn: The function, sync or async. An optional first parameter annotated `RunContext`
            receives the run's context and is not shown to the model.
        name: Tool name (default: the function's name).
        description: Description (default: the docstring's summary and body).
        policy: Timeout, approval and other limits.
        require_docs: Fail when a parameter has no description (default: true).
        facts: Looks up facts about the resource a call touches (see `ToolPolicy.facts`).
        templates: Customer-facing sentences by situation and language
            (`ToolDefinition.templates`).

    Raises:
        ToolDefinitionError: A parameter lacks a type hint or a description.
    """
    tool_name = name or fn.__name__
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:  # unresolvable forward references
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot resolve type hints: {e}") from e
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    param_docs = {p.arg_name: (p.description or "").strip() for p in doc.params}

    params = list(sig.parameters.values())
    takes_ctx = bool(params) and _is_run_context(hints.get(params[0].name, None))
    if takes_ctx:
        params = params[1:]

    fields: dict[str, Any] = {}
    missing_docs: list[str] = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolDefinitionError(f"tool {tool_name!r}: *args / **kwargs are not supported")
        if p.name not in hints:
            raise ToolDefinitionError(f"tool {tool_name!r}: parameter {p.name!r} has no type hint")
        annotation = hints[p.name]
        if _is_run_context(annotation):
            raise ToolDefinitionError(f"tool {tool_name!r}: RunContext must be the first parameter")
        default = ... if p.default is inspect.Parameter.empty else p.default
        text = param_docs.get(p.name)
        if text:
            fields[p.name] = (
                annotation,
                FieldInfo.merge_field_infos(
                    FieldInfo.from_annotated_attribute(annotation, default), description=text
                ),
            )
        else:
            if not _has_description(annotation):
                missing_docs.append(p.name)
            fields[p.name] = (annotation, default)
    if missing_docs and require_docs:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: no description for parameter(s) {', '.join(missing_docs)}; "
            "document them in the docstring's Args: section"
        )

    summary = "\n\n".join(s for s in (doc.short_description, doc.long_description) if s)
    desc = description if description is not None else summary.strip()
    if not desc and require_docs:
        raise ToolDefinitionError(f"tool {tool_name!r}: no description; give it a docstring")

    model: type[BaseModel] = create_model(
        f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    try:
        schema = clean_schema(model.model_json_schema())
    except Exception as e:  # types pydantic cannot describe
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot build a JSON schema: {e}") from e
    names = [p.name for p in params]

    def validate(args: dict[str, Any]) -> dict[str, Any]:
        try:
            parsed = model.model_validate(args)
        except ValidationError as e:
            raise pydantic_errors(tool_name, e) from None
        return {n: getattr(parsed, n) for n in names}

    t = Tool(
        ToolDefinition(
            name=tool_name, description=desc, parameters=schema, templates=templates or {}
        ),
        fn,
        validator=validate,
        policy=policy,
        takes_ctx=takes_ctx,
        facts=facts,
    )
    t.__doc__ = fn.__doc__
    return t


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 60.0,
    max_retries: int | None = None,
    requires_approval: bool = False,
    idempotent: bool = False,
    max_concurrency: int | None = None,
    rate_limit: float | None = None,
    redact: list[str] | None = None,
    requires_identity: bool = False,
    verifies_identity: bool = False,
    facts: Callable[..., Any] | None = None,
    owner: str | None = None,
    rules: list[Rule] | None = None,
    per_customer: PerCustomerLimit | None = None,
    templates: dict[str, dict[str, str]] | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 60.0,
    max_retries: int | None = None,
    requires_approval: bool = False,
    idempotent: bool = False,
    max_concurrency: int | None = None,
    rate_limit: float | None = None,
    redact: list[str] | None = None,
    requires_identity: bool = False,
    verifies_identity: bool = False,
    facts: Callable[..., Any] | None = None,
    owner: str | None = None,
    rules: list[Rule] | None = None,
    per_customer: PerCustomerLimit | None = None,
    templates: dict[str, dict[str, str]] | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed, documented function into a `Tool`; use as `@tool` or `@tool(...)`.

    The JSON schema comes from the type hints (pydantic: nested models, enums, `Literal`,
    `Optional`, lists, dicts), descriptions from the Google-style docstring.

    Args:
        fn: The function (when used bare as `@tool`).
        name: Tool name (default: the function's name).
        description: Description (default: from the docstring).
        timeout: Seconds one call may take.
        max_retries: Correctable failures allowed for this tool in one run.
        requires_approval: Calls go through the agent's approval hook first.
        idempotent: Safe to repeat.
        max_concurrency: Most calls running at once.
        rate_limit: Most calls per second.
        redact: Argument names masked in logs and transcripts.
        requires_identity: Runs only for a verified customer.
        verifies_identity: A successful call verifies the customer (its result's `customer_id`).
        facts: Looks up facts about the resource a call touches, from its arguments.
        owner: The fact (or result field) naming the resource's owner.
        rules: Rules on arguments, facts and result.
        per_customer: Most successful calls per verified customer in a window.
        templates: Customer-facing sentences by situation and language.
    """
    policy = ToolPolicy(
        timeout=timeout,
        max_retries=max_retries,
        requires_approval=requires_approval,
        idempotent=idempotent,
        max_concurrency=max_concurrency,
        rate_limit=rate_limit,
        redact=redact or [],
        requires_identity=requires_identity,
        verifies_identity=verifies_identity,
        owner=owner,
        rules=rules or [],
        per_customer=per_customer,
    )

    def decorate(f: Callable[..., Any]) -> Tool:
        return function_tool(
            f,
            name=name,
            description=description,
            policy=policy,
            facts=facts,
            templates=templates,
        )

    return decorate(fn) if fn is not None else decorate
