"""The checks as pydantic-evals evaluators: each returns named assertions (and scores) that land
in the report's table and in glm-agent's JSON and HTML reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_evals.evaluators import EvaluationReason, Evaluator, EvaluatorContext

from glm_agent.evals._checks import expectation_checks, policy_violations
from glm_agent.evals._dataset import CaseSpec, PolicyRule
from glm_agent.evals._judge import judge
from glm_agent.evals._transcript import Conversation

__all__ = ["Expectations", "Policy", "Rubric"]

Context = EvaluatorContext[CaseSpec, Conversation, Any]


@dataclass(repr=False)
class Expectations(Evaluator[CaseSpec, Conversation, Any]):
    """The case's and its turns' expectations (tools, texts, handoff, curated answers,
    citations, outputs, final state), and that the conversation ran without errors."""

    def evaluate(self, ctx: Context) -> dict[str, EvaluationReason]:
        out: dict[str, EvaluationReason] = {}
        for check in expectation_checks(ctx.inputs, ctx.output):
            out[check.name] = EvaluationReason(check.passed, check.reason)
            if check.score is not None:
                name = check.name.replace("grounded", "grounding")
                out[name] = EvaluationReason(round(check.score, 4), check.reason)
        return out


@dataclass(repr=False)
class Policy(Evaluator[CaseSpec, Conversation, Any]):
    """The dataset's and the case's policy rules: `policy` passes when none is broken;
    `policy_violations` counts the broken ones."""

    rules: list[PolicyRule] = field(default_factory=list)

    def evaluate(self, ctx: Context) -> dict[str, EvaluationReason | int]:
        rules = [*self.rules, *ctx.inputs.policy]
        if not rules:
            return {}
        broken = policy_violations(rules, ctx.output)
        why = "; ".join(broken) or f"{len(rules)} rule(s) kept"
        return {"policy": EvaluationReason(not broken, why), "policy_violations": len(broken)}


@dataclass(repr=False)
class Rubric(Evaluator[CaseSpec, Conversation, Any]):
    """`rubric:` expectations, judged by a model (skipped when there is no judge)."""

    judge_model: Any = None

    async def evaluate(self, ctx: Context) -> dict[str, EvaluationReason]:
        if self.judge_model is None:
            return {}
        rubrics = []
        if ctx.inputs.expect.rubric:
            rubrics.append(("rubric", ctx.inputs.expect.rubric))
        for i, turn in enumerate(ctx.inputs.fixed_turns(), 1):
            if turn.expect and turn.expect.rubric:
                rubrics.append(
                    (f"rubric@{i}", f"(about the customer's message {i}) {turn.expect.rubric}")
                )
        out: dict[str, EvaluationReason] = {}
        for name, rubric in rubrics:
            verdict = await judge(self.judge_model, rubric, ctx.output)
            out[name] = EvaluationReason(verdict.passed, verdict.reason)
        return out
