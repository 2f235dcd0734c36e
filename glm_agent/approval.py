"""Approval of tool calls that need a human (or a policy) to say yes first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from glm_agent.messages import ToolCall
from glm_agent.tools import RunContext

__all__ = ["Approval", "ApprovalHandler", "Approved", "Deferred", "Rejected"]


@dataclass(frozen=True)
class Approved:
    """Run the call.

    `override_args` runs it with these arguments instead of the ones in the transcript (they are
    validated again). Server code uses it to resume a call whose stored copy was redacted; never
    fill it from a client's request.
    """

    override_args: dict[str, Any] | None = None
    kind: Literal["approved"] = "approved"


@dataclass(frozen=True)
class Rejected:
    """Do not run the call; the model is told why."""

    reason: str = "the call was rejected"
    kind: Literal["rejected"] = "rejected"


@dataclass(frozen=True)
class Deferred:
    """Decide later: the run stops with the call pending (`RunResult.deferred_calls`).

    Resume with a run of `prompt=None`, `approvals={call.id: ...}` and the same `session_id`
    (on an agent with memory) or `message_history=result.messages`.
    """

    kind: Literal["deferred"] = "deferred"


Approval = Approved | Rejected | Deferred
"""A decision on one tool call."""

ApprovalHandler = Callable[
    [RunContext[Any], ToolCall, dict[str, Any]], Approval | bool | Awaitable[Approval | bool]
]
"""Decides on a call of a tool marked `requires_approval`, given the context, the call and its
validated arguments. `True` / `False` mean approved / rejected."""
