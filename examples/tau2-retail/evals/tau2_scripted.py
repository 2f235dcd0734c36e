"""Scripted agents for τ²-bench retail: the ground truth, and variants that break the rules in
known ways, so that the evaluation's scores can be checked against what each must score.

Each replays the task's golden actions (from `current_case().metadata`) as tool calls, one per
turn, through the agent's real loop: the same validation, approvals and tools as a model's calls.

- `ground_truth`: every action, then a final message telling the required outputs: reward 1.0.
- `skips_writes`: only the read actions: the database keeps its initial state, so the reward is
  1.0 exactly on tasks whose golden final state is the initial one.
- `silent`: every action, but the final message tells nothing: the reward is 0.0 exactly on
  tasks with required outputs.
- `no_auth`: never identifies the customer (skips `find_user_id_by_*`): the database still ends
  right (reward 1.0), but `identify_before` is broken on every task whose actions use the
  customer's data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from glm_agent import AgentInfo, AssistantMessage, Message, ToolCall, ToolMessage
from glm_agent.evals import current_case

AUTH = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
READS = AUTH | {
    "calculate",
    "get_item_details",
    "get_order_details",
    "get_product_details",
    "get_user_details",
    "list_all_product_types",
}


def _script(
    keep: Callable[[dict[str, Any]], bool], tell: bool
) -> Callable[[list[Message], AgentInfo], AssistantMessage | str]:
    def reply(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        case = current_case()
        actions = [a for a in case.metadata["actions"] if keep(a)]
        done = sum(isinstance(m, ToolMessage) for m in messages)
        if done < len(actions):
            a = actions[done]
            call = ToolCall.from_args(a["name"], a["arguments"])
            call = call.model_copy(update={"id": a.get("action_id") or call.id})
            return AssistantMessage(tool_calls=(call,))
        outputs = case.metadata["outputs"] if tell else []
        return " ".join(["All done.", *map(str, outputs)])

    return reply


ground_truth = _script(lambda a: True, tell=True)
skips_writes = _script(lambda a: a["name"] in READS, tell=True)
silent = _script(lambda a: True, tell=False)
no_auth = _script(lambda a: a["name"] not in AUTH, tell=True)
