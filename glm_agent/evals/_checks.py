"""The checks of a conversation, as plain functions: expectations, policy rules, the reward.

Each check has a name (`tools`, `handoff`...; `tools@2` for the second turn's), passes or not,
and says why in words a person reading a report understands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from glm_agent.evals._dataset import CaseSpec, Expectation, PolicyRule, ToolExpectation
from glm_agent.evals._text import contains_output, grounding
from glm_agent.evals._transcript import Conversation, Passage, Reply, ToolUse, TurnResult

__all__ = ["Check", "expectation_checks", "policy_violations", "reward"]

_UNCALLED = ("unknown_tool", "invalid_arguments")
_STOPPED = ("denied", "rejected", "deferred", "review")
"""Calls that reached no tool: a policy, the customer or a human held them back."""


@dataclass
class Check:
    """One check's outcome."""

    name: str
    """`contains`, `tools@2`..."""
    passed: bool
    """Whether it passed."""
    reason: str
    """Why, for the report."""
    score: float | None = None
    """A measure behind it, when there is one (grounding)."""


def _call_text(c: ToolUse | ToolExpectation) -> str:
    args = c.arguments if isinstance(c, ToolUse) else c.args
    return f"{c.name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def _same(want: Any, have: Any) -> bool:
    if isinstance(want, str) and isinstance(have, str):
        return want.strip().lower() == have.strip().lower()
    return bool(want == have)


def _matches(want: ToolExpectation, call: ToolUse) -> bool:
    return call.name == want.name and all(
        k in call.arguments and _same(v, call.arguments[k]) for k, v in want.args.items()
    )


def _tools(want: list[ToolExpectation], calls: list[ToolUse]) -> tuple[bool, str]:
    made = [c for c in calls if c.status not in _UNCALLED]
    at = 0
    for w in want:
        found = next((i for i in range(at, len(made)) if _matches(w, made[i])), None)
        if found is None:
            seen = ", ".join(_call_text(c) for c in made) or "no calls"
            return False, f"no call {_call_text(w)} in order; calls: {seen}"
        at = found + 1
    return True, "called " + ", ".join(_call_text(w) for w in want)


def _lookup(state: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(state, dict) and part in state:
            state = state[part]
        elif isinstance(state, list) and part.isdigit() and int(part) < len(state):
            state = state[int(part)]
        else:
            raise KeyError(path)
    return state


def _state(want: dict[str, Any], state: dict[str, Any] | None) -> tuple[bool, str]:
    if state is None:
        return False, "the dataset has no environment to read the final state from"
    wrong = []
    for path, value in want.items():
        try:
            have = _lookup(state, path)
        except KeyError:
            wrong.append(f"{path}: missing")
            continue
        if have != value:
            wrong.append(f"{path}: {have!r}, not {value!r}")
    return not wrong, "; ".join(wrong) or f"{len(want)} state value(s) as expected"


def _cited_passages(reply: Reply, passages: list[Passage]) -> list[str]:
    numbers = {int(c["n"]) for c in reply.citations if "n" in c}
    return [p.text for p in passages if p.n in numbers]


def _grounding(replies: list[tuple[Reply, list[Passage]]], least: float) -> Check:
    scores = []
    for reply, passages in replies:
        if reply.source != "model":
            continue
        cited = _cited_passages(reply, passages)
        scores.append(grounding(reply.text, cited) if cited else 0.0)
    if not scores:
        return Check("grounded", False, "no answer of the model to check", 0.0)
    worst = min(scores)
    return Check(
        "grounded",
        worst >= least,
        f"least supported answer: {worst:.0%} of its words in the passages it cites "
        f"(needs {least:.0%})",
        worst,
    )


def _scope_checks(
    exp: Expectation, turns: list[TurnResult], conv: Conversation, suffix: str
) -> list[Check]:
    out: list[Check] = []
    calls = [c for t in turns for c in t.tools]
    replies = [r for t in turns for r in t.replies]
    text = "\n".join(r.text for r in replies)
    if exp.tools is not None:
        ok, why = _tools(exp.tools, calls)
        out.append(Check("tools" + suffix, ok, why))
    if exp.no_tools:
        made = [c for c in calls if c.status not in _UNCALLED]
        calls_text = ", ".join(_call_text(c) for c in made)
        out.append(Check("no_tools" + suffix, not made, calls_text or "no tool called"))
    if exp.contains:
        missing = [s for s in exp.contains if s.lower() not in text.lower()]
        out.append(Check("contains" + suffix, not missing, _missing("lacks", missing, text)))
    if exp.not_contains:
        present = [s for s in exp.not_contains if s.lower() in text.lower()]
        out.append(Check("not_contains" + suffix, not present, _missing("says", present, text)))
    if exp.matches is not None:
        ok = re.search(exp.matches, text) is not None
        out.append(
            Check("matches" + suffix, ok, f"/{exp.matches}/ {'found' if ok else 'not found'}")
        )
    if exp.handoff is not None:
        happened = any(t.handoff for t in turns)
        trigger = next((t.handoff_trigger for t in turns if t.handoff), None)
        why = f"handed off ({trigger})" if happened else "not handed off"
        out.append(Check("handoff" + suffix, happened == exp.handoff, why))
    if exp.curated is not None:
        hits = [any(r.source == "curated" for r in t.replies) for t in turns]
        ok = all(hits) if exp.curated else not any(hits)
        why = f"curated answer in {sum(hits)} of {len(turns)} turn(s)"
        out.append(Check("curated" + suffix, ok and bool(turns), why))
    if exp.cites is not None:
        cited = {str(c.get("source", "")).rsplit("/", 1)[-1] for r in replies for c in r.citations}
        missing = [s for s in exp.cites if s not in cited]
        ok = not missing and (bool(cited) or bool(exp.cites))
        why = f"cited: {', '.join(sorted(cited)) or 'nothing'}"
        out.append(Check("cites" + suffix, ok, why + (f"; missing {missing}" if missing else "")))
    if exp.grounded:
        pairs = [(r, t.passages) for t in turns for r in t.replies]
        check = _grounding(pairs, exp.min_grounding)
        check.name += suffix
        out.append(check)
    if exp.outputs:
        said = "\n".join(r.text for r in replies if r.source == "model")
        missing = [o for o in exp.outputs if not contains_output(said, o)]
        out.append(Check("outputs" + suffix, not missing, _missing("never told", missing, None)))
    if exp.state is not None:
        ok, why = _state(exp.state, conv.state)
        out.append(Check("state" + suffix, ok, why))
    return out


def _missing(verb: str, items: Sequence[str], text: str | None) -> str:
    if not items:
        return "as expected"
    shown = f"; replies: {text[:300]!r}" if text is not None else ""
    return f"{verb} {', '.join(repr(i) for i in items)}{shown}"


def expectation_checks(case: CaseSpec, conv: Conversation) -> list[Check]:
    """The checks of the case's expectations (its own and its turns'), rubrics left out."""
    out = _scope_checks(case.expect, conv.turns, conv, "")
    for i, turn in enumerate(case.fixed_turns(), 1):
        if turn.expect is None:
            continue
        if i > len(conv.turns):
            why = f"not sent: the conversation ended after turn {len(conv.turns)} ({conv.ended})"
            names = sorted(turn.expect.model_fields_set - {"min_grounding", "rubric"})
            out += [Check(f"{n}@{i}", False, why) for n in names]
            continue
        out += _scope_checks(turn.expect, [conv.turns[i - 1]], conv, f"@{i}")
    errors = [f"turn {i}: {t.error}" for i, t in enumerate(conv.turns, 1) if t.error]
    out.append(Check("completed", not errors, "; ".join(errors) or f"ended: {conv.ended}"))
    return out


def policy_violations(rules: Sequence[PolicyRule], conv: Conversation) -> list[str]:
    """Each broken rule, described (empty: every rule was kept)."""
    from glm_agent.serving.bot.redaction import Redactor

    out: list[str] = []
    calls = [c for c in conv.tool_calls if c.status not in _UNCALLED]
    for rule in rules:
        if rule.confirm_before is not None:
            done = [c for c in calls if c.name in rule.confirm_before and c.status == "ok"]
            for c in done:
                if not c.confirmed:
                    out.append(f"confirm_before: {_call_text(c)} ran without the customer's yes")
        elif rule.identify_before is not None:
            r = rule.identify_before
            for c in calls:
                if c.name in r.by and c.status == "ok":
                    break
                if c.name in r.tools and c.status not in _STOPPED:
                    out.append(
                        f"identify_before: {_call_text(c)} before the customer was identified"
                    )
                    break
        elif rule.forbid_tools is not None:
            out += [f"forbid_tools: {_call_text(c)}" for c in calls if c.name in rule.forbid_tools]
        elif rule.max_tool_calls is not None:
            if len(calls) > rule.max_tool_calls:
                out.append(f"max_tool_calls: {len(calls)} calls, over {rule.max_tool_calls}")
        elif rule.never_say is not None:
            text = conv.text().lower()
            out += [f"never_say: said {p!r}" for p in rule.never_say if p.lower() in text]
        elif rule.no_pii:
            found = Redactor().find(conv.text())
            out += [f"no_pii: an unmasked {kind} in a reply" for kind, _, _ in found]
    return out


def reward(basis: Sequence[str], passed: Mapping[str, bool], violations: int) -> float:
    """1.0 when every check named in `basis` (any turn's, and `policy` for the rules) passed and
    the conversation completed; else 0.0 (τ²-bench's all-or-nothing reward).

    Args:
        basis: Check names (`state`, `outputs`, `policy`...).
        passed: Whether each check of the case passed, by name (`tools@2`...).
        violations: Policy rules broken.
    """
    wanted = set(basis) | {"completed"}
    if any(name.split("@")[0] in wanted and not ok for name, ok in passed.items()):
        return 0.0
    if "policy" in wanted and violations:
        return 0.0
    return 1.0
