"""Evaluation datasets: conversations and what should happen in them, read from YAML or JSONL.

```yaml
name: customer-service
agent: ../agent.yaml            # the agent to evaluate (relative to this file; --agent overrides)
target: bot                     # `bot`: the support pipeline (support.yaml); `agent`: the agent
environment: store_env:StoreEnvironment   # fresh tool state per run, read back for `state:` checks
policy:                         # rules every conversation must keep
  - confirm_before: [cancel_order, return_order]
cases:
  - id: faq-shipping-zh
    tags: [faq]
    turns: [运费怎么算？]        # fixed customer turns...
    expect: {curated: true, contains: ["99"], handoff: false}
  - id: cancel-order
    turns:
      - text: 帮我取消订单 SO10003
        expect: {tools: [{name: cancel_order, args: {order_id: SO10003}}]}
      - 确认
    expect: {state: {orders.SO10003: cancelled}}
  - id: simulated
    user: {scenario: "You want to know where order SO10004 is.", max_turns: 6}   # ...or played
```

A JSONL dataset holds one case per line (the dataset settings then come from the command line).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from glm_agent._yaml_source import key_path, read_yaml
from glm_agent.agent_config import ModelConfig
from glm_agent.exceptions import ConfigError

__all__ = [
    "CaseSpec",
    "DatasetSpec",
    "Expectation",
    "IdentifyRule",
    "PolicyRule",
    "ToolExpectation",
    "Turn",
    "UserSpec",
    "import_object",
    "load_dataset",
]

ModelRef = str | ModelConfig
"""A model string (`zhipu:glm-4.5`), a name of the dataset's `models:`, or a `ModelConfig`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolExpectation(_Strict):
    """A tool call that must happen."""

    name: str
    """The tool's name."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Arguments the call must have (others may be there too); strings compare without case."""


class Expectation(_Strict):
    """What must happen in a conversation (on a case) or in one turn (on a turn)."""

    tools: list[ToolExpectation] | None = None
    """Calls that must be made, in this order (other calls may come between)."""
    no_tools: bool | None = None
    """True: no tool may be called."""
    contains: list[str] = Field(default_factory=list)
    """Texts the bot's replies must contain (each, without regard to case)."""
    not_contains: list[str] = Field(default_factory=list)
    """Texts the bot's replies must not contain."""
    matches: str | None = None
    """A regular expression the bot's replies must match (`re.search`)."""
    rubric: str | None = None
    """What a judge model checks the conversation against (needs a judge: `--judge`)."""
    handoff: bool | None = None
    """Whether the conversation is handed to a human (on a turn: in that turn)."""
    curated: bool | None = None
    """Whether a curated answer replies (on a case: to every turn; on a turn: to that one)."""
    cites: list[str] | None = None
    """Sources (file names) the replies must cite; `[]`: cite at least one passage."""
    grounded: bool | None = None
    """True: the cited passages must support the reply (see `min_grounding`)."""
    min_grounding: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of a reply's words (Chinese: character pairs) its cited passages must contain."""
    outputs: list[str] = Field(default_factory=list)
    """Values the model must tell the customer (τ²-bench `communicate_info`): each must be in
    some reply of the model, compared without case and with commas removed."""
    state: dict[str, Any] | None = None
    """The environment's final state: `orders.SO10003: cancelled` (dotted paths) or values."""


class IdentifyRule(_Strict):
    """The customer is identified before these tools run."""

    tools: list[str]
    """Tools that need an identified customer."""
    by: list[str]
    """Tools whose successful call identifies the customer."""


class PolicyRule(_Strict):
    """One rule a conversation must keep (exactly one field is set)."""

    confirm_before: list[str] | None = None
    """These tools run only after the customer confirmed the action."""
    identify_before: IdentifyRule | None = None
    """The customer is identified before these tools run."""
    forbid_tools: list[str] | None = None
    """These tools are never called."""
    max_tool_calls: int | None = Field(default=None, ge=0)
    """At most this many tool calls in the conversation."""
    never_say: list[str] | None = None
    """Phrases no reply may contain (without regard to case)."""
    no_pii: bool | None = None
    """No reply shows an unmasked phone, ID-card or bank-card number or e-mail address."""

    @model_validator(mode="after")
    def _one(self) -> PolicyRule:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            names = ", ".join(type(self).model_fields)
            raise ValueError(f"give exactly one rule per item (got {len(given)}); rules: {names}")
        return self

    @property
    def name(self) -> str:
        """The rule's kind (its one field)."""
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class Turn(_Strict):
    """A customer message and what must happen in reply to it."""

    text: str
    """What the customer says."""
    expect: Expectation | None = None
    """Checks of this turn."""


class UserSpec(_Strict):
    """A simulated customer: a model plays them, following a scenario."""

    scenario: str
    """Who the customer is, what they want and know (and what they do not)."""
    model: ModelRef | None = None
    """The model playing the customer (default: the dataset's `user.model`, else `--user-model`)."""
    max_turns: int | None = Field(default=None, ge=1)
    """Most customer messages (default: the dataset's, else 10)."""
    first_message: str | None = None
    """The customer's opening message, when fixed."""


class UserDefaults(_Strict):
    """Defaults for simulated customers."""

    model: ModelRef | None = None
    """The model playing customers (`--user-model` overrides)."""
    max_turns: int = Field(default=10, ge=1)
    """Most customer messages in a simulated conversation."""


class CaseSpec(_Strict):
    """One conversation of a dataset."""

    id: str = Field(pattern=r"^[^\s]+$")
    """A unique id (no spaces)."""
    tags: list[str] = Field(default_factory=list)
    """Labels to select cases by (`--tag`) and to group results."""
    locale: str | None = None
    """`zh` or `en`: with `target: bot`, the conversation's language until the customer's
    messages show one (the widget passes the browser's); the bot follows each message's."""
    turns: list[str | Turn] = Field(default_factory=list)
    """Fixed customer messages, in order."""
    user: UserSpec | None = None
    """A simulated customer instead of fixed turns."""
    expect: Expectation = Field(default_factory=Expectation)
    """Checks of the whole conversation."""
    policy: list[PolicyRule] = Field(default_factory=list)
    """Rules for this conversation, besides the dataset's."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free data for the environment and scripted models (`current_case().metadata`)."""

    @model_validator(mode="after")
    def _turns_or_user(self) -> CaseSpec:
        if bool(self.turns) == (self.user is not None):
            raise ValueError("give either turns (fixed messages) or user (a simulated customer)")
        return self

    def fixed_turns(self) -> list[Turn]:
        """The fixed turns, each as a `Turn`."""
        return [t if isinstance(t, Turn) else Turn(text=t) for t in self.turns]


class DatasetSpec(_Strict):
    """A dataset file."""

    name: str
    """The dataset's name (shown in reports)."""
    description: str = ""
    """What it covers."""
    agent: str | None = None
    """The agent.yaml evaluated, relative to the dataset file (`--agent` overrides)."""
    target: Literal["agent", "bot"] = "agent"
    """`agent`: conversations with the agent itself; `bot`: through the support bot (curated
    answers, handoff, confirmations) configured by the support.yaml beside the agent.yaml."""
    environment: str | None = None
    """`module:factory` (module beside the dataset) giving a fresh tool state per run and per
    case, and reading it back for `state:` checks (see `Environment`)."""
    cases_from: str | None = None
    """`module:function` returning more cases (dicts of the case schema), e.g. from files that
    are not in the repository."""
    models: dict[str, ModelRef] = Field(default_factory=dict)
    """Named models for `--model NAME` (scripted ones as `{function: module:function}`)."""
    user: UserDefaults = Field(default_factory=UserDefaults)
    """Defaults for simulated customers."""
    judge: ModelRef | None = None
    """The model that judges `rubric:` checks (`--judge` overrides)."""
    handoff_tool: str = "hand_off"
    """With `target: agent`: the tool whose call counts as a handoff."""
    confirm_words: list[str] = Field(
        default_factory=lambda: ["yes", "y", "confirm", "ok", "确认", "是", "是的", "好的", "对"]
    )
    """With `target: agent`: replies that confirm a tool call waiting for approval."""
    policy: list[PolicyRule] = Field(default_factory=list)
    """Rules every conversation must keep."""
    reward: list[str] = Field(default_factory=list)
    """Checks whose passing together makes a case's `reward` 1.0 (τ²-bench: state, outputs)."""
    cases: list[CaseSpec] = Field(default_factory=list)
    """The conversations."""
    path: Path | None = Field(default=None, exclude=True)
    """The file it was read from."""

    @property
    def base_dir(self) -> Path:
        """The folder the dataset's relative paths and modules are taken from."""
        return self.path.parent if self.path is not None else Path.cwd()


def import_object(spec: str, base_dir: Path, *, what: str) -> Any:
    """`module:attribute`, the module imported from `base_dir` (or anywhere on sys.path)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} must look like module:attribute")
    folder = str(base_dir.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot load {what} {spec!r}: {e}") from None
    return obj


def _error(
    path: Path, err: ValidationError, line_of: Any, prefix: tuple[Any, ...] = ()
) -> ConfigError:
    # With unions every branch reports an error; the deepest one is the branch meant.
    located = [(key_path(e["loc"]), e) for e in err.errors()]
    loc, first = max(located, key=lambda pair: len(pair[0]))
    full = (*prefix, *loc)
    return ConfigError(
        first["msg"], path=str(path), line=line_of(full), key=".".join(map(str, full)) or None
    )


def _read_jsonl(path: Path) -> DatasetSpec:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(CaseSpec.model_validate(json.loads(line)))
        except json.JSONDecodeError as e:
            raise ConfigError(f"not JSON: {e.msg}", path=str(path), line=n) from None
        except ValidationError as e:
            raise _error(path, e, lambda _loc, line=n: line) from None
    return DatasetSpec(name=path.stem, cases=cases, path=path)


def load_dataset(path: str | Path) -> DatasetSpec:
    """Read and validate a dataset (`.yaml` / `.yml`, or `.jsonl` with one case per line),
    with the cases of its `cases_from` function appended.

    Raises:
        ConfigError: naming the file, the line and the key that is wrong (duplicate case ids
            too).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no dataset file {str(path)!r}")
    if path.suffix == ".jsonl":
        spec = _read_jsonl(path)
    elif path.suffix in (".yaml", ".yml"):
        source = read_yaml(path)
        data = source.mapping()
        try:
            spec = DatasetSpec.model_validate({"name": path.stem, **data, "path": path})
        except ValidationError as e:
            raise _error(path, e, source.line) from None
    else:
        raise ConfigError(f"{path}: a dataset is a .yaml, .yml or .jsonl file")
    if spec.cases_from:
        produce = import_object(spec.cases_from, spec.base_dir, what="cases_from")
        for i, raw in enumerate(produce(spec.base_dir)):
            try:
                spec.cases.append(
                    raw if isinstance(raw, CaseSpec) else CaseSpec.model_validate(raw)
                )
            except ValidationError as e:
                raise _error(path, e, lambda _loc: None, ("cases_from", i)) from None
    seen: set[str] = set()
    for case in spec.cases:
        if case.id in seen:
            raise ConfigError(f"two cases have the id {case.id!r}", path=str(path), key="cases")
        seen.add(case.id)
    if not spec.cases:
        raise ConfigError("the dataset has no cases", path=str(path), key="cases")
    return spec
