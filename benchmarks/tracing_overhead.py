"""What OpenTelemetry tracing costs an agent step: off (no provider), sampled out, recording.

The agent of `agent_overhead.py` (a scripted model that answers instantly, N-1 turns calling a
no-op tool) is timed per step, each configuration in its own process (a process sets its tracer
provider once), in interleaved rounds so that a busy machine slows all of them alike:

- `tracing off (no provider)`: the baseline: what every user without a tracer provider runs.
- `base tree (no spans)`: with `--base-tree PATH`, the same agent from a checkout without any
  span code (e.g. `git worktree add /tmp/base <commit>`): what the spans cost when off.
- `provider, sampled out`: an SDK provider whose sampler drops every trace.
- `recording, exported nowhere`: every span recorded and handed to a batch exporter that drops
  it (the on-path cost of tracing in production).
- `recording + content capture`: the same with prompts, tool arguments and results recorded.

Each run is timed twice: wall time, and the process's CPU time (which a machine shared with other
work disturbs much less: time spent waiting for a core is not counted). The comparison uses CPU.

    python benchmarks/tracing_overhead.py [--steps 10] [--runs 300] [--rounds 3] [--base-tree PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    "tracing off (no provider)",
    "provider, sampled out",
    "recording, exported nowhere",
    "recording + content capture",
]
BASE = "base tree (no spans)"


def _install(config: str) -> None:
    if config in (BASE, CONFIGS[0]):
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    class Nowhere(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    if config == CONFIGS[1]:
        trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_OFF))
        return
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    if config == CONFIGS[3]:
        from glm_agent import tracing

        tracing.set_capture_content(True)


def worker(config: str, steps: int, runs: int, use_async: bool) -> list[list[float]]:
    """[wall µs, CPU µs] per step of each of `runs` runs (after a warm-up), in this process."""
    _install(config)
    from glm_agent import Agent, AgentInfo, AssistantMessage, FunctionModel, Message, ToolCall, tool

    @tool
    def noop(x: int) -> str:
        """Do nothing.

        Args:
            x: Any number.
        """
        return "ok"

    @tool
    async def anoop(x: int) -> str:
        """Do nothing, asynchronously.

        Args:
            x: Any number.
        """
        return "ok"

    name = "anoop" if use_async else "noop"

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        done = sum(1 for m in messages if m.role == "tool")
        if done < steps - 1:
            call = ToolCall(id=f"c{done}", name=name, arguments='{"x": 1}')
            return AssistantMessage(tool_calls=(call,))
        return "final answer"

    agent = Agent(
        FunctionModel(model_fn), tools=[anoop if use_async else noop], max_steps=steps + 1
    )

    if use_async:

        async def times() -> list[tuple[float, float]]:
            out = []
            for i in range(runs + max(3, runs // 10)):
                t, c = time.perf_counter(), time.process_time()
                result = await agent.arun("go")
                if i >= max(3, runs // 10):
                    out.append((time.perf_counter() - t, time.process_time() - c))
                assert result.output == "final answer"
            return out

        seconds = asyncio.run(times())
    else:
        seconds = []
        for i in range(runs + max(3, runs // 10)):
            t, c = time.perf_counter(), time.process_time()
            result = agent.run("go")
            if i >= max(3, runs // 10):
                seconds.append((time.perf_counter() - t, time.process_time() - c))
            assert result.output == "final answer"
    return [[w / steps * 1e6, c / steps * 1e6] for w, c in seconds]


def _spawn(config: str, args: argparse.Namespace, use_async: bool) -> list[list[float]]:
    env = dict(os.environ)
    if config == BASE:
        env["PYTHONPATH"] = str(Path(args.base_tree).resolve())
    cmd = [sys.executable, __file__, "--worker", config, "--steps", str(args.steps)]
    cmd += ["--runs", str(args.runs)] + (["--async"] if use_async else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=10, help="model turns per run")
    ap.add_argument("--runs", type=int, default=300, help="timed runs per process")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per configuration")
    ap.add_argument("--base-tree", default=None, help="a checkout without span code")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--async", dest="use_async", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.steps, args.runs, args.use_async)))
        return

    configs = ([BASE] if args.base_tree else []) + CONFIGS
    rows = []
    print(
        f"\nOpenTelemetry cost per agent step ({args.steps} steps/run, {args.runs} runs x "
        f"{args.rounds} rounds per configuration; scripted model, no-op tool)\n"
    )
    print(
        "| API | configuration | median CPU µs/step | vs tracing off | median wall µs/step "
        "| p90 wall µs/step |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for use_async in (False, True):
        variant = "async tool, arun" if use_async else "sync tool, run"
        samples: dict[str, list[list[float]]] = {c: [] for c in configs}
        for _ in range(args.rounds):
            for config in configs:
                samples[config] += _spawn(config, args, use_async)
        base = statistics.median(c for _, c in samples[CONFIGS[0]])
        for config in configs:
            cpu = statistics.median(c for _, c in samples[config])
            wall = [w for w, _ in samples[config]]
            median, p90 = statistics.median(wall), statistics.quantiles(wall, n=10)[-1]
            rows.append(
                {
                    "variant": variant,
                    "configuration": config,
                    "median_cpu_us_per_step": cpu,
                    "vs_tracing_off": cpu / base,
                    "median_wall_us_per_step": median,
                    "p90_wall_us_per_step": p90,
                    "runs": len(wall),
                    "steps_per_run": args.steps,
                }
            )
            print(
                f"| {variant} | {config} | {cpu:.1f} | {cpu / base:.2f}x | {median:.1f} "
                f"| {p90:.1f} |"
            )
    out = ROOT / "benchmarks" / "results" / "tracing_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
