"""The summary an agent's model writes of a session's oldest turns (the context window's
`summarize`)."""

from __future__ import annotations

from glm_agent.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage
from glm_agent.models import ChatModel

__all__ = ["SUMMARY_PROMPT", "summarize"]

SUMMARY_PROMPT = (
    "Summarise this customer-service conversation for the agent who continues it: the "
    "customer's identity and goals, facts and decisions so far, open questions. Be brief and "
    "keep ids, amounts and dates exactly."
)


async def summarize(model: ChatModel, messages: list[Message], previous: str | None) -> str:
    """A summary of `messages` (and the previous summary) written by `model` (the agent's
    rolling session summary, `ContextWindow(summarize=...)`)."""
    lines = [f"Previous summary: {previous}"] if previous else []
    for m in messages:
        if isinstance(m, UserMessage | ToolMessage):
            text = m.text + " [image]" * len(m.media)  # the summary keeps that there was one
        else:
            text = m.content or ""
        if isinstance(m, AssistantMessage) and m.tool_calls:
            text += " ".join(f"[called {c.name}({c.arguments})]" for c in m.tool_calls)
        lines.append(f"{m.role}: {text}")
    response = await model.request(
        [SystemMessage(content=SUMMARY_PROMPT), UserMessage(content="\n".join(lines))]
    )
    return (response.message.content or "").strip()
