"""Long-term memory in an agent: `remember` and `recall` tools scoped to the run's customer."""

from __future__ import annotations

from typing import Any

from glm_agent.exceptions import ModelRetry
from glm_agent.memory import LongTermMemory
from glm_agent.tools import RunContext, Tool, function_tool

__all__ = ["customer_of", "long_term_tools"]


def customer_of(ctx: RunContext[Any]) -> tuple[str, str]:
    """(tenant, customer id) of a run: `metadata["customer_id"]`, else the session id."""
    customer = ctx.metadata.get("customer_id") or ctx.session_id
    if not customer:
        raise ModelRetry("long-term memory needs a known customer; none is set for this run")
    return ctx.tenant or "default", str(customer)


def long_term_tools(memory: LongTermMemory, *, k: int = 5) -> list[Tool]:
    """Tools that save and recall facts about the current customer."""

    async def remember(ctx: RunContext[Any], fact: str) -> str:
        """Save a lasting fact about the customer (a preference, a detail worth knowing later).

        Args:
            fact: One short self-contained sentence, e.g. "Prefers delivery after 6 pm".
        """
        tenant, customer = customer_of(ctx)
        saved = await memory.remember(tenant, customer, fact)
        return f"remembered: {saved.text}"

    async def recall(ctx: RunContext[Any], query: str) -> str:
        """Recall saved facts about the customer that relate to a topic.

        Args:
            query: The topic, e.g. "delivery preferences".
        """
        tenant, customer = customer_of(ctx)
        facts = await memory.recall(tenant, customer, query, k=k)
        if not facts:
            return "no saved facts about this customer match"
        return "\n".join(f"- {f.text}" for f in facts)

    return [function_tool(remember), function_tool(recall)]
