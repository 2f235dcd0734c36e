"""Enforcing tools' business policies around a call: identity, ownership, rules, limits.

Everything here reads facts (the run's verified identity, the facts a tool's `facts` function
looks up, the tool's result), never the model's text. What the model is told when a check fails
is a JSON object with an `error` code, so a model (or the offline model's templates) can explain
it to the customer in their language.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Any

from glm_agent.results import ToolStatus
from glm_agent.tools import Identity, PolicyState, Rule, RunContext, Tool, ToolRegistry

__all__ = ["Verdict", "after_call", "after_success", "before_call", "error_content"]


@dataclass
class Verdict:
    """A check that stopped a call: its record status and what the model is told."""

    status: ToolStatus
    content: str
    detail: str = ""
    """Why, for the logs and human agents (never for the model)."""
    facts: dict[str, Any] = field(default_factory=dict)


def error_content(code: str, **data: Any) -> str:
    """What the model is told about a refused call: `{"error": code, ...}` as JSON."""
    return json.dumps({"error": code, **data}, ensure_ascii=False, default=str)


def _verifiers(registry: ToolRegistry) -> list[dict[str, Any]]:
    return [
        {"tool": t.name, "arguments": sorted(t.definition.parameters.get("properties", {}))}
        for t in registry
        if t.policy.verifies_identity
    ]


def _say(rule: Rule, values: dict[str, Any]) -> str | dict[str, str] | None:
    if rule.say is None:
        return None
    texts = {"text": rule.say} if isinstance(rule.say, str) else dict(rule.say)
    return {lang: _fill(text, values) for lang, text in texts.items()}


def _fill(text: str, values: dict[str, Any]) -> str:
    class Keep(dict[str, Any]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    # 2445.0 yuan reads as 2445 yuan: a whole amount is shown whole.
    shown = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}
    try:
        return text.format_map(Keep(shown))
    except (ValueError, IndexError):
        return text


async def _facts(tool: Tool, kwargs: dict[str, Any]) -> dict[str, Any]:
    fn = tool.facts
    assert fn is not None
    # One facts function serves every tool about a resource (`order_facts(order_id)` for
    # cancel, return, change_address...): it gets the arguments it names.
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    if inspect.iscoroutinefunction(fn):
        found = await fn(**kwargs)
    else:
        found = await asyncio.to_thread(fn, **kwargs)
    return dict(found or {})


def _rules(tool: Tool, values: dict[str, dict[str, Any]], sources: set[str]) -> Verdict | None:
    for rule in tool.policy.rules:
        if rule.parts()[0] not in sources or not rule.holds(values):
            continue
        flat = {**values.get("facts", {}), **values.get("args", {}), **values.get("result", {})}
        code = "needs_review" if rule.then == "review" else "not_allowed"
        status: ToolStatus = "review" if rule.then == "review" else "denied"
        return Verdict(
            status,
            error_content(code, rule=rule.condition, say=_say(rule, flat)),
            detail=f"rule {rule.condition!r} holds: {rule.then}",
            facts=values.get("facts", {}),
        )
    return None


async def before_call(
    tool: Tool,
    kwargs: dict[str, Any],
    ctx: RunContext[Any],
    registry: ToolRegistry,
    state: PolicyState,
) -> tuple[Verdict | None, dict[str, Any]]:
    """Check a validated call before it runs; (the verdict that stops it or None, its facts)."""
    policy = tool.policy
    identity = ctx.identity
    needs_identity = policy.requires_identity or (policy.owner is not None)
    if needs_identity and identity is None:
        verify = _verifiers(registry)
        return (
            Verdict(
                "denied",
                error_content(
                    "identity_required",
                    message="verify the customer first, then call this tool again",
                    verify_with=verify,
                ),
                detail="no verified customer",
            ),
            {},
        )
    tenant = ctx.tenant or "default"
    if policy.per_customer is not None and identity is not None:
        window = policy.per_customer
        since = time.time() - window.seconds
        used = await state.count(tenant, identity.customer_id, tool.name, since)
        if used >= window.calls:
            return (
                Verdict(
                    "denied",
                    error_content("limit_reached", limit=window.calls, seconds=window.seconds),
                    detail=f"{used} calls of {tool.name} in {window.seconds:g} s",
                ),
                {},
            )
    facts: dict[str, Any] = {}
    if tool.facts is not None:
        facts = await _facts(tool, kwargs)
        if policy.owner is not None and identity is not None:
            owner = facts.get(policy.owner)
            if owner is None or str(owner) != identity.customer_id:
                # The same answer whether the resource is someone else's or does not exist:
                # order ids are guessable, their existence is not the model's to learn.
                return (
                    Verdict(
                        "denied",
                        error_content("not_found_for_customer", **kwargs),
                        detail=f"owner {owner!r} is not the verified {identity.customer_id!r}",
                        facts=facts,
                    ),
                    facts,
                )
    return _rules(tool, {"args": kwargs, "facts": facts}, {"args", "facts"}), facts


def after_call(
    tool: Tool, value: Any, kwargs: dict[str, Any], facts: dict[str, Any], ctx: RunContext[Any]
) -> Verdict | None:
    """Check a result before the model sees it (owner without facts, `result.*` rules)."""
    policy = tool.policy
    result = value if isinstance(value, dict) else {}
    identity = ctx.identity
    if policy.owner is not None and tool.facts is None and identity is not None:
        owner = result.get(policy.owner)
        if owner is None or str(owner) != identity.customer_id:
            return Verdict(
                "denied",
                error_content("not_found_for_customer", **kwargs),
                detail=f"result owner {owner!r} is not the verified {identity.customer_id!r}",
            )
    values = {"args": kwargs, "facts": facts, "result": result}
    return _rules(tool, values, {"result"})


async def after_success(tool: Tool, value: Any, ctx: RunContext[Any], state: PolicyState) -> None:
    """Record what a successful call established: a verified customer, a counted call."""
    if tool.policy.verifies_identity and isinstance(value, dict) and value.get("customer_id"):
        rest = {k: v for k, v in value.items() if k != "customer_id"}
        ctx.identity = Identity(str(value["customer_id"]), f"tool:{tool.name}", rest)
    if tool.policy.per_customer is not None and ctx.identity is not None:
        await state.record(
            ctx.tenant or "default", ctx.identity.customer_id, tool.name, time.time()
        )
