"""Framework time per agent step: glm-agent vs LangGraph's prebuilt ReAct agent.

Both agents get a scripted model (answers instantly: N-1 turns each call a no-op tool, the last
turn answers) and the same no-op tool, so what is timed is the framework alone: message
handling, validation, tool dispatch and bookkeeping per step.

Two variants: a sync no-op tool through the sync APIs (`Agent.run` / `graph.invoke`; both
frameworks run sync tools on a worker thread) and an async no-op tool through the async APIs
(`Agent.arun` / `graph.ainvoke`).

    python benchmarks/agent_overhead.py [--steps 10] [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

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


def glm_agent_runner(steps: int, use_async: bool) -> Any:
    name = "anoop" if use_async else "noop"

    def model_fn(messages: list[Message], info: AgentInfo) -> AssistantMessage | str:
        done = sum(1 for m in messages if m.role == "tool")
        if done < steps - 1:
            return AssistantMessage(
                tool_calls=(ToolCall(id=f"c{done}", name=name, arguments='{"x": 1}'),)
            )
        return "final answer"

    agent = Agent(
        FunctionModel(model_fn), tools=[anoop if use_async else noop], max_steps=steps + 1
    )

    def check(result: Any) -> None:
        assert result.output == "final answer" and len(result.steps) == steps

    if use_async:

        async def arun_once() -> None:
            check(await agent.arun("go"))

        return arun_once

    def run_once() -> None:
        check(agent.run("go"))

    return run_once


def langgraph_runner(steps: int, use_async: bool) -> Any:
    warnings.filterwarnings("ignore")
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import StructuredTool
    from langgraph.prebuilt import create_react_agent

    class ScriptedChatModel(BaseChatModel):
        """The same script as glm-agent's FunctionModel, as a langchain-core chat model."""

        @property
        def _llm_type(self) -> str:
            return "scripted"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: Any = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> ChatResult:
            done = sum(1 for m in messages if isinstance(m, ToolMessage))
            if done < steps - 1:
                msg = AIMessage(
                    content="",
                    tool_calls=[
                        {"id": f"c{done}", "name": "noop", "args": {"x": 1}, "type": "tool_call"}
                    ],
                )
            else:
                msg = AIMessage(content="final answer")
            return ChatResult(generations=[ChatGeneration(message=msg)])

    def lc_noop(x: int) -> str:
        """Do nothing."""
        return "ok"

    async def lc_anoop(x: int) -> str:
        """Do nothing."""
        return "ok"

    lc_tool = (
        StructuredTool.from_function(coroutine=lc_anoop, name="noop")
        if use_async
        else StructuredTool.from_function(func=lc_noop, name="noop")
    )
    graph = create_react_agent(ScriptedChatModel(), [lc_tool])
    config = {"recursion_limit": 4 * steps}

    def check(out: Any) -> None:
        assert out["messages"][-1].content == "final answer"

    if use_async:

        async def arun_once() -> None:
            check(await graph.ainvoke({"messages": [("user", "go")]}, config))

        return arun_once

    def run_once() -> None:
        check(graph.invoke({"messages": [("user", "go")]}, config))

    return run_once


def measure(run_once: Any, runs: int, use_async: bool) -> list[float]:
    async def atimes() -> list[float]:
        for _ in range(max(3, runs // 10)):  # warm-up
            await run_once()
        out = []
        for _ in range(runs):
            t = time.perf_counter()
            await run_once()
            out.append(time.perf_counter() - t)
        return out

    if use_async:
        return asyncio.run(atimes())
    for _ in range(max(3, runs // 10)):  # warm-up
        run_once()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run_once()
        times.append(time.perf_counter() - t)
    return times


def thread_hop_floor(n: int) -> float:
    """Median µs of one `asyncio.to_thread` round trip of a no-op function."""

    def nothing() -> None:
        return None

    async def hops() -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await asyncio.to_thread(nothing)
            out.append((time.perf_counter() - t) * 1e6)
        return out

    return statistics.median(asyncio.run(hops()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10, help="model turns per run")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per framework")
    args = ap.parse_args()

    rows = []
    print(
        f"\nFramework overhead per agent step ({args.steps} steps/run, {args.runs} runs; "
        "scripted model, no-op tool)\n"
    )
    print("| tool / API | framework | median µs/step | p90 µs/step | baseline / this |")
    print("|---|---|---:|---:|---:|")
    for use_async in (False, True):
        variant = "async tool, arun / ainvoke" if use_async else "sync tool, run / invoke"
        pair = []
        for name, factory in [
            ("glm-agent", glm_agent_runner),
            ("langgraph create_react_agent (baseline)", langgraph_runner),
        ]:
            times = measure(factory(args.steps, use_async), args.runs, use_async)
            per_step = [t / args.steps * 1e6 for t in times]
            pair.append(
                {
                    "variant": variant,
                    "framework": name,
                    "median_us_per_step": statistics.median(per_step),
                    "p90_us_per_step": statistics.quantiles(per_step, n=10)[-1],
                    "runs": args.runs,
                    "steps_per_run": args.steps,
                }
            )
        base = pair[1]["median_us_per_step"]
        for r in pair:
            r["speedup_vs_baseline"] = base / r["median_us_per_step"]
            print(
                f"| {variant} | {r['framework']} | {r['median_us_per_step']:.1f} | "
                f"{r['p90_us_per_step']:.1f} | {r['speedup_vs_baseline']:.1f}x |"
            )
        rows.extend(pair)
    floor = thread_hop_floor(args.runs * args.steps)
    print(
        f"\nThread dispatch floor (one asyncio.to_thread round trip of a no-op, the hop every "
        f"sync tool call takes in both frameworks): median {floor:.1f} µs"
    )
    rows.append(
        {
            "variant": "floor",
            "framework": "asyncio.to_thread round trip",
            "median_us_per_step": floor,
        }
    )
    out = Path(__file__).parent / "results" / "agent_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
