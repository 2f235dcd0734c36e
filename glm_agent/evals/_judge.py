"""Rubric checks judged by a model: any glm-agent `ChatModel` (a GLM behind vLLM or Zhipu, a
local GLM, a scripted `FunctionModel` in tests) reads the conversation and the rubric and answers
with a verdict in JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from glm_agent.evals._transcript import Conversation
from glm_agent.messages import SystemMessage, UserMessage
from glm_agent.models.base import ChatModel

__all__ = ["JUDGE_INSTRUCTIONS", "Verdict", "judge"]

JUDGE_INSTRUCTIONS = (
    "You grade a customer-service conversation against a rubric. Read the conversation, then "
    'answer with one JSON object and nothing else: {"pass": true or false, "score": a number '
    'from 0 to 1, "reason": "one or two sentences"}. Pass only when the conversation meets '
    "every point of the rubric."
)
_JSON = re.compile(r"\{.*\}", re.S)


@dataclass
class Verdict:
    """A judge's answer."""

    passed: bool
    """Whether the rubric is met."""
    score: float
    """How well, from 0 to 1."""
    reason: str
    """The judge's reason (or why its answer could not be read)."""


def transcript_text(conv: Conversation) -> str:
    """The conversation as the judge reads it: customer, tool calls, replies."""
    lines = []
    for turn in conv.turns:
        lines.append(f"Customer: {turn.customer}")
        for c in turn.tools:
            lines.append(
                f"[tool {c.name}({json.dumps(c.arguments, ensure_ascii=False)}) -> {c.status}]"
            )
        for r in turn.replies:
            lines.append(f"Support ({r.source}): {r.text}")
        if turn.handoff:
            lines.append("[handed off to a human agent]")
    return "\n".join(lines)


def _read(text: str) -> Verdict:
    found = _JSON.search(text)
    try:
        data = json.loads(found.group(0)) if found else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("pass"), bool):
        return Verdict(False, 0.0, f"the judge's answer is not a verdict: {text[:200]!r}")
    score = data.get("score", 1.0 if data["pass"] else 0.0)
    try:
        score = min(1.0, max(0.0, float(score)))
    except (TypeError, ValueError):
        score = 1.0 if data["pass"] else 0.0
    return Verdict(data["pass"], score, str(data.get("reason") or ""))


async def judge(model: ChatModel, rubric: str, conv: Conversation) -> Verdict:
    """The judge's verdict on `conv` against `rubric`."""
    prompt = f"Rubric:\n{rubric}\n\nConversation:\n{transcript_text(conv)}"
    response = await model.request(
        [SystemMessage(content=JUDGE_INSTRUCTIONS), UserMessage(content=prompt)]
    )
    return _read(response.message.content or "")
