"""`run_eval`: every case of a dataset as a conversation with the agent (or its support bot),
run concurrently by pydantic-evals, checked, scored and reported."""

from __future__ import annotations

import contextvars
import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glm_agent.evals._checks import reward
from glm_agent.evals._dataset import CaseSpec, DatasetSpec, ModelRef, import_object, load_dataset
from glm_agent.evals._models import build_agent, model_label, open_model
from glm_agent.evals._report import CaseOutcome, EvalReport
from glm_agent.evals._scores import CaseFacts, support_scores
from glm_agent.evals._targets import AgentSession, BotTarget, Session
from glm_agent.evals._transcript import Conversation
from glm_agent.evals._user import SimulatedUser
from glm_agent.exceptions import ConfigError, MissingDependencyError, UserError

__all__ = ["current_case", "run_eval"]

_CASE: contextvars.ContextVar[CaseSpec | None] = contextvars.ContextVar(
    "glm_agent_eval_case", default=None
)


def current_case() -> CaseSpec:
    """The case being evaluated, for scripted models and environments that play a case's part
    (τ²-bench's ground-truth model reads the case's actions from its metadata).

    Raises:
        UserError: called outside an evaluation.
    """
    case = _CASE.get()
    if case is None:
        raise UserError("current_case() is only known while glm-agent eval runs a case")
    return case


async def _converse(
    session: Session, case: CaseSpec, user: SimulatedUser | None, max_turns: int
) -> Conversation:
    conv = Conversation(case.id)
    if user is None:
        turns = case.fixed_turns()
        for i, turn in enumerate(turns):
            result = await session.say(turn.text)
            conv.turns.append(result)
            if result.handoff or result.error:
                conv.ended = "handoff" if result.handoff else "error"
                conv.skipped_turns = len(turns) - i - 1
                break
        return conv
    transcript: list[tuple[str, str]] = []
    conv.ended = "max_turns"
    for _ in range(max_turns):
        text = await user.next(transcript)
        if text is None:
            conv.ended = "user_stop"
            break
        result = await session.say(text)
        conv.turns.append(result)
        transcript.append(("customer", text))
        transcript += [("bot", r.text) for r in result.replies]
        if result.handoff or result.error:
            conv.ended = "handoff" if result.handoff else "error"
            break
    return conv


class _CaseRunner:
    """The task pydantic-evals runs per case: one conversation, and the environment's state."""

    def __init__(
        self,
        spec: DatasetSpec,
        env: Any,
        agent: Any,
        target: BotTarget | None,
        user_ref: ModelRef | None,
        metric: Any,
    ) -> None:
        self.spec, self.env, self.agent, self.target = spec, env, agent, target
        self.user_ref, self.metric = user_ref, metric

    async def __call__(self, case: CaseSpec) -> Conversation:
        token = _CASE.set(case)
        try:
            deps = self.env.deps(case) if hasattr(self.env, "deps") else None
            session: Session
            if self.target is not None:
                session = await self.target.session(f"eval-{case.id}", case.locale)
            else:
                session = AgentSession(
                    self.agent,
                    deps=deps,
                    confirm_words=self.spec.confirm_words,
                    handoff_tool=self.spec.handoff_tool,
                    metadata={"channel": "eval", "customer_id": f"eval-{case.id}"},
                )
            user = None
            if case.user is not None:
                ref = case.user.model or self.user_ref
                assert ref is not None  # checked before the run
                model = open_model(ref, self.spec)
                user = SimulatedUser(model, case.user.scenario, case.user.first_message)
            max_turns = (case.user.max_turns if case.user else None) or self.spec.user.max_turns
            conv = await _converse(session, case, user, max_turns)
            if hasattr(self.env, "state"):
                conv.state = self.env.state(case, deps)
            self.metric("input_tokens", conv.input_tokens)
            self.metric("output_tokens", conv.output_tokens)
            self.metric("tool_calls", len(conv.tool_calls))
            self.metric("turns", len(conv.turns))
            return conv
        finally:
            _CASE.reset(token)


def _environment(spec: DatasetSpec) -> Any:
    if spec.environment is None:
        return None
    factory = import_object(spec.environment, spec.base_dir, what="environment")
    return factory(spec.base_dir)


def _agent_yaml(spec: DatasetSpec, agent: str | Path | None) -> Path:
    if agent is not None:
        path = Path(agent)
    elif spec.agent is not None:
        path = spec.base_dir / spec.agent
    else:
        raise UserError(
            f"which agent? the dataset {spec.name!r} names none: give --agent agent.yaml"
        )
    if not path.is_file():
        raise ConfigError(f"no agent file {str(path)!r}")
    return path.resolve()


async def run_eval(
    dataset: DatasetSpec | str | Path,
    *,
    agent: str | Path | None = None,
    environment: str | None = None,
    model: ModelRef | None = None,
    user_model: ModelRef | None = None,
    judge: ModelRef | None = None,
    concurrency: int = 4,
    progress: bool = False,
    cases: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> EvalReport:
    """Evaluate an agent on a dataset.

    ```python
    report = await run_eval("examples/customer-service/evals/support.yaml", concurrency=4)
    report.print()
    report.write_json("report.json")
    ```

    Args:
        dataset: A `DatasetSpec`, or a dataset file (YAML or JSONL).
        agent: The agent.yaml (default: the dataset's `agent:`).
        environment: An `environments:` overlay of the agent.yaml (`local`, `vllm`, `zhipu`...).
        model: Replace the agent's model: a model string or a name of the dataset's `models:`.
        user_model: The model playing simulated customers (over the dataset's `user.model`).
        judge: The model judging `rubric:` checks (over the dataset's `judge:`).
        concurrency: Conversations run at once.
        progress: Show a progress bar.
        cases: Run only these case ids.
        tags: Run only cases with one of these tags.

    Raises:
        ConfigError: a bad dataset, agent.yaml or support.yaml (names the file, line and key).
        MissingDependencyError: pydantic-evals is not installed (the `evals` extra).
    """
    try:
        from pydantic_evals import Case, Dataset, increment_eval_metric
    except ImportError:
        raise MissingDependencyError("pydantic-evals", "evals", "glm-agent eval") from None
    from glm_agent.evals._evaluators import Expectations, Policy, Rubric

    spec = dataset if isinstance(dataset, DatasetSpec) else load_dataset(dataset)
    chosen = [
        c
        for c in spec.cases
        if (not cases or c.id in cases) and (not tags or set(tags) & set(c.tags))
    ]
    if not chosen:
        ids = ", ".join(c.id for c in spec.cases[:20])
        raise UserError(f"no case matches the selection; cases: {ids}")
    agent_yaml = _agent_yaml(spec, agent)
    user_ref = user_model or spec.user.model
    judge_ref = judge or spec.judge
    if user_ref is None and any(c.user is not None and c.user.model is None for c in chosen):
        raise UserError(
            "simulated customers need a model: give --user-model or the dataset's user.model"
        )
    judge_model = open_model(judge_ref, spec) if judge_ref is not None else None
    env = _environment(spec)
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="glm-agent-eval-") as workdir:
        if hasattr(env, "setup"):
            env.setup()
        agent_obj = target = None
        try:
            agent_obj = build_agent(agent_yaml, spec, environment=environment, model=model)
            if spec.target == "bot":
                target = BotTarget(agent_obj, agent_yaml, Path(workdir))
            runner = _CaseRunner(spec, env, agent_obj, target, user_ref, increment_eval_metric)
            evaluation = await Dataset[CaseSpec, Conversation, Any](
                name=spec.name,
                cases=[Case(name=c.id, inputs=c, metadata={"tags": c.tags}) for c in chosen],
                evaluators=[Expectations(), Policy(list(spec.policy)), Rubric(judge_model)],
            ).evaluate(runner, name=spec.name, max_concurrency=concurrency, progress=progress)
        finally:
            if target is not None:
                target.close()
            if agent_obj is not None:
                await agent_obj.aclose()
            if hasattr(env, "teardown"):
                env.teardown()
    settings = {
        "agent": str(agent_yaml),
        "target": spec.target,
        "environment": environment,
        "model": model_label(model, spec) or _agent_model(agent_obj),
        "user_model": model_label(user_ref, spec),
        "judge": model_label(judge_ref, spec),
        "concurrency": concurrency,
        "started": started.isoformat(timespec="seconds"),
        "glm_agent": _version(),
    }
    return _report(spec, chosen, evaluation, settings, judge_model is not None)


def _agent_model(agent: Any) -> str:
    function = getattr(agent.model, "function", None)
    if function is not None:  # a scripted model: name the function
        return f"{function.__module__}:{function.__qualname__}"
    return str(getattr(agent.model, "model", None) or agent.model.name)


def _version() -> str:
    from glm_agent import __version__

    return __version__


def _report(
    spec: DatasetSpec,
    chosen: list[CaseSpec],
    evaluation: Any,
    settings: dict[str, Any],
    judged: bool,
) -> EvalReport:
    by_name = {c.name: c for c in evaluation.cases}
    failures = {f.name: f for f in evaluation.failures}
    outcomes: list[CaseOutcome] = []
    facts: list[CaseFacts] = []
    skipped = 0
    for case in chosen:
        rubrics = int(bool(case.expect.rubric)) + sum(
            1 for t in case.fixed_turns() if t.expect and t.expect.rubric
        )
        skipped += 0 if judged else rubrics
        if case.id in failures:
            error = failures[case.id].error_message
            outcomes.append(CaseOutcome(case.id, case.tags, False, error, {}, {}, {}, None))
            facts.append(CaseFacts(case, None, False, 0, 0.0 if spec.reward else None))
            continue
        rc = by_name[case.id]
        conv: Conversation = rc.output
        checks = {
            n: {"passed": bool(r.value), "reason": r.reason or ""} for n, r in rc.assertions.items()
        }
        for failure in rc.evaluator_failures:
            checks[f"evaluator:{failure.name}"] = {"passed": False, "reason": failure.error_message}
        scores = {n: float(r.value) for n, r in rc.scores.items()}
        violations = int(scores.get("policy_violations", 0))
        case_reward = None
        if spec.reward:
            ok = {n: bool(c["passed"]) for n, c in checks.items()}
            case_reward = scores["reward"] = reward(spec.reward, ok, violations)
        passed = all(c["passed"] for c in checks.values())
        metrics = {k: float(v) for k, v in rc.metrics.items()}
        metrics["seconds"] = round(conv.seconds, 4)
        outcomes.append(
            CaseOutcome(case.id, case.tags, passed, None, checks, scores, metrics, conv.to_json())
        )
        facts.append(CaseFacts(case, conv, passed, violations, case_reward))
    return EvalReport(
        dataset=spec.name,
        settings=settings,
        cases=outcomes,
        scores=support_scores(facts),
        rubrics_skipped=skipped,
        evaluation=evaluation,
    )
