"""Business rules on tool calls, checked in code from facts, never from what the model says.

A tool's `ToolPolicy` may say that it needs a verified customer (`requires_identity`), that a
successful call verifies one (`verifies_identity`), whose resource it touches (`owner`, read from
the facts a `facts` function looks up, or from the result of a read-only tool), rules on its
arguments, facts and result (`facts.total > 2000` → `review`), and a per-customer limit. The
agent loop enforces them around every call (`glm_agent._execution`).

```yaml
- name: return_order
  python: store_tools:return_order
  policy:
    requires_identity: true
    facts: store_tools:order_facts        # (order_id) -> {customer_id, total, status, ...}
    owner: customer_id                    # the fact naming the order's owner
    rules:
      - {if: facts.total > 2000, then: review}
    per_customer: {calls: 3, seconds: 86400}
```
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Identity",
    "MemoryPolicyState",
    "PerCustomerLimit",
    "PolicyState",
    "Rule",
]

_CONDITION = re.compile(
    r"^\s*(args|facts|result)\.([A-Za-z_]\w*)\s*(>=|<=|==|!=|>|<|not in|in)\s*(.+?)\s*$"
)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


@dataclass
class Identity:
    """The customer a run acts for, once verified: by the channel, or by a verification tool."""

    customer_id: str
    """The customer's id in the business's own system."""
    verified_by: str
    """How: `channel:<name>` (a signed channel vouched for it) or `tool:<name>`."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What the verification returned besides the id (name, tier...)."""


class Rule(BaseModel):
    """One rule: when `if` holds for the call, `then` happens.

    `if` compares one value of the call with a literal: `args.<name>`, `facts.<name>` (from the
    tool's facts function) or `result.<name>` (the tool's result, for read-only checks), then
    `>`, `>=`, `<`, `<=`, `==`, `!=`, `in` or `not in`, then a YAML literal (`2000`, `shipped`,
    `[shipped, delivered]`). `then`: `deny` (the call does not run; the model is told why) or
    `review` (it does not run; the run stops and a human reviews it).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    condition: str = Field(alias="if")
    """The condition, e.g. `facts.total > 2000`."""
    then: Literal["deny", "review"] = "deny"
    """What happens when it holds."""
    say: str | dict[str, str] | None = None
    """What the customer is told (by language, `{zh: ..., en: ...}`); `{field}`s are filled from
    the arguments and facts. Default: a neutral sentence."""

    @model_validator(mode="after")
    def _parse(self) -> Rule:
        self.parts()
        return self

    def parts(self) -> tuple[str, str, str, Any]:
        """(source, name, operator, literal) of the condition.

        Raises:
            ValueError: The condition does not have that shape.
        """
        m = _CONDITION.match(self.condition)
        if m is None:
            raise ValueError(
                f"rule condition {self.condition!r} must look like 'facts.total > 2000': "
                "args|facts|result, a name, one of > >= < <= == != in 'not in', a value"
            )
        literal = yaml.safe_load(m.group(4))
        return m.group(1), m.group(2), m.group(3), literal

    def holds(self, values: dict[str, dict[str, Any]]) -> bool:
        """Whether the condition holds for `values` (`{"args": ..., "facts": ..., "result": ...}`).

        A missing value, or one that cannot be compared, never holds (`in` / `not in` on a
        missing value is False too): rules deny on facts, not on their absence.
        """
        source, name, op, literal = self.parts()
        if name not in values.get(source, {}):
            return False
        try:
            return bool(_OPS[op](values[source][name], literal))
        except TypeError:
            return False


class PerCustomerLimit(BaseModel):
    """At most `calls` successful calls per verified customer in `seconds`."""

    model_config = ConfigDict(extra="forbid")

    calls: int = Field(ge=1)
    """How many."""
    seconds: float = Field(gt=0)
    """In how long a window."""


class PolicyState(Protocol):
    """Where per-customer call counts live (in memory for one process; the support bot keeps
    them in its database so that every worker sees them)."""

    async def count(self, tenant: str, customer_id: str, tool: str, since: float) -> int:
        """Successful calls of `tool` by the customer since the Unix time `since`."""
        ...

    async def record(self, tenant: str, customer_id: str, tool: str, at: float) -> None:
        """Count one successful call."""
        ...


class MemoryPolicyState:
    """`PolicyState` in this process's memory."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str, str], list[float]] = defaultdict(list)

    async def count(self, tenant: str, customer_id: str, tool: str, since: float) -> int:
        """See `PolicyState.count`."""
        return sum(1 for t in self._calls[(tenant, customer_id, tool)] if t >= since)

    async def record(self, tenant: str, customer_id: str, tool: str, at: float) -> None:
        """See `PolicyState.record`."""
        calls = self._calls[(tenant, customer_id, tool)]
        calls.append(at)
        cutoff = time.time() - 7 * 86400
        while calls and calls[0] < cutoff:
            calls.pop(0)
