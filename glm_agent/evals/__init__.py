"""Evaluating support agents: datasets of conversations, checks, support scores and reports.

```python
from glm_agent.evals import run_eval

report = await run_eval("examples/customer-service/evals/support.yaml", concurrency=4)
report.print()                       # per-case table, failed checks, support scores
report.write_json("report.json")     # compare a later run with it: report.compare_to(...)
report.write_html("report.html")
```

or `glm-agent eval DATASET --agent agent.yaml [--model M] [--compare earlier.json]`.

A dataset (`load_dataset`) is YAML or JSONL of conversations: fixed customer turns or a customer
simulated by a model following a scenario, and what must happen: tools called with arguments, the
final state of the tools' data, reply text, a judge's rubric, handoff or not, a curated answer or
not, cited and supporting passages, policy rules kept. Cases run concurrently on pydantic-evals;
the report adds support scores: handoff precision / recall, curated-answer hit rate, citation
grounding, policy violations, resolution rate, tokens and latency per conversation.
`dataset_from_export` turns the support console's export into a dataset, so that real traffic
becomes regression tests.

Needs the `evals` extra (`pip install "glm-agent[evals]"`) to run.
"""

from glm_agent.evals._dataset import (
    CaseSpec,
    DatasetSpec,
    Expectation,
    IdentifyRule,
    PolicyRule,
    ToolExpectation,
    Turn,
    UserSpec,
    load_dataset,
)
from glm_agent.evals._export import dataset_from_export, write_dataset
from glm_agent.evals._report import CaseOutcome, Comparison, EvalReport, compare, load_report
from glm_agent.evals._runner import current_case, run_eval
from glm_agent.evals._transcript import Conversation, Passage, Reply, ToolUse, TurnResult

__all__ = [
    "CaseOutcome",
    "CaseSpec",
    "Comparison",
    "Conversation",
    "DatasetSpec",
    "EvalReport",
    "Expectation",
    "IdentifyRule",
    "Passage",
    "PolicyRule",
    "Reply",
    "ToolExpectation",
    "ToolUse",
    "Turn",
    "TurnResult",
    "UserSpec",
    "compare",
    "current_case",
    "dataset_from_export",
    "load_dataset",
    "load_report",
    "run_eval",
    "write_dataset",
]
