"""`glm-agent eval` (score an agent on a dataset) and `glm-agent eval-import` (the support
console's export as a dataset)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["eval_command", "eval_import_command"]


def eval_command(
    dataset: Annotated[Path, typer.Argument(help="The dataset: YAML, or JSONL (a case a line).")],
    agent: Annotated[
        Path | None, typer.Option("--agent", "-a", help="The agent.yaml (default: the dataset's).")
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", help="An `environments:` overlay of the agent.yaml.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Replace the agent's model: a model string or a dataset model."
        ),
    ] = None,
    user_model: Annotated[
        str | None, typer.Option("--user-model", help="The model playing simulated customers.")
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="The model judging rubric checks.")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 4,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="Run only this case (repeatable).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Run only cases with this tag (repeatable).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the JSON and HTML reports.")
    ] = Path("eval-reports"),
    compare: Annotated[
        Path | None, typer.Option("--compare", help="An earlier JSON report to compare with.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    strict: Annotated[
        bool,
        typer.Option(
            help="Exit with 1 when a case fails (or, with --compare, when one got worse)."
        ),
    ] = False,
) -> None:
    """Run a dataset of conversations against an agent (or its support bot), check and score
    them, print a table and write JSON and HTML reports."""
    from glm_agent.evals import load_report, run_eval

    earlier = load_report(compare) if compare is not None else None
    report = asyncio.run(
        run_eval(
            dataset,
            agent=agent,
            environment=env,
            model=model,
            user_model=user_model,
            judge=judge,
            concurrency=concurrency,
            progress=progress,
            cases=case or (),
            tags=tag or (),
        )
    )
    if earlier is not None:
        report.compare_to(earlier)
    report.print()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", report.dataset) + "-" + stamp
    json_path = report.write_json(out / f"{stem}.json")
    html_path = report.write_html(out / f"{stem}.html")
    typer.echo(f"reports: {json_path}  {html_path}")
    if strict:
        failed = report.scores["passed"] < report.scores["cases"]
        worse = bool(report.comparison and report.comparison.regressions)
        if failed or worse:
            raise typer.Exit(1)


def eval_import_command(
    export: Annotated[
        Path, typer.Argument(help="An export of the bot's conversations (JSONL).", exists=True)
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The dataset file to write.")],
    agent: Annotated[
        str | None,
        typer.Option("--agent", help="The agent.yaml, as the dataset should name it (relative)."),
    ] = None,
) -> None:
    """Turn the support console's export (`glm-agent support export`) into a dataset: real
    conversations become regression tests."""
    from glm_agent.evals import write_dataset

    count = write_dataset(export, output, agent=agent)
    typer.echo(f"{output}: {count} cases")
