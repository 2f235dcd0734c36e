"""GLM codec benchmark: parse throughput, streaming cost per token, render time per message.

Baseline (same run): a plain one-shot regex parser of the same outputs, the way serving
engines do it (vLLM-style: split / regex / json.loads, no schema typing, no fallbacks).

    .venv/bin/python benchmarks/glm_codec.py [--rounds N]

Prints a markdown table and writes benchmarks/results/glm_codec.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glm_agent.glm import get_format
from glm_agent.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    TextDelta,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)

ROOT = Path(__file__).resolve().parents[1]
PARSE_CASES = ROOT.parent / "shared" / "glm" / "conformance" / "parse_cases.jsonl"
FAMILIES = ("glm4", "glm4-0414", "glm45", "glm47", "chatglm3")
TOOLS = [
    ToolDefinition(
        name="get_weather",
        description="查询指定城市的天气",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
        },
    ),
    ToolDefinition(
        name="run_python",
        description="Run code",
        parameters={"type": "object", "properties": {"code": {"type": "string"}}},
    ),
    ToolDefinition(
        name="search_orders",
        description="Find orders",
        parameters={
            "type": "object",
            "properties": {
                "customer_id": {"type": "string"},
                "status": {"type": ["string", "null"]},
                "limit": {"type": "integer"},
                "filters": {"type": "object"},
                "ids": {"type": "array", "items": {"type": "integer"}},
            },
        },
    ),
]
WORDS = [
    "the",
    "order",
    "was",
    "shipped",
    "on",
    "time",
    "订单",
    "已经",
    "发货",
    "请",
    "耐心",
    "等待",
    "please",
    "wait",
    "thank",
    "you",
]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def random_call(rng: random.Random) -> ToolCall:
    kind = rng.randrange(3)
    if kind == 0:
        args: dict[str, Any] = {
            "city": rng.choice(["北京", "上海", "Paris"]),
            "days": rng.randint(1, 7),
        }
    elif kind == 1:
        code = "\n".join(f"x{i} = {i} * 2  # {sentence(rng, 3)}" for i in range(rng.randint(3, 30)))
        args = {"code": code + '\nprint("done")'}
    else:
        args = {
            "customer_id": f"C-{rng.randint(1, 9999)}",
            "status": rng.choice([None, "shipped"]),
            "limit": 20,
            "filters": {"since": "2025-01-01", "vip": True},
            "ids": [rng.randint(1, 10**6) for _ in range(5)],
        }
    name = ["get_weather", "run_python", "search_orders"][kind]
    return ToolCall.from_args(name, args)


def outputs(family: str, rng: random.Random, n: int) -> list[tuple[str, bool | None]]:
    """Raw outputs (with the thinking flag they were rendered with) for one family."""
    fmt = get_format(family)
    out: list[tuple[str, bool | None]] = []
    tools = [] if family == "chatglm3" else TOOLS
    for i in range(n):
        thinking = (
            None if family in ("glm4", "chatglm3", "glm4-0414") else rng.choice([True, False])
        )
        reasoning = sentence(rng, rng.randint(20, 200)) if thinking else None
        calls = (
            tuple(random_call(rng) for _ in range(rng.randint(1, 3)))
            if tools and i % 2 == 0
            else ()
        )
        content = sentence(rng, rng.randint(5, 40)) if not calls or i % 4 == 0 else ""
        if not calls:
            content = "\n\n".join(
                sentence(rng, rng.randint(20, 60)) for _ in range(rng.randint(1, 6))
            )
        turn = AssistantMessage(content=content, reasoning=reasoning, tool_calls=calls)
        prefix: list[Message] = [UserMessage(content="question")]
        kw: dict[str, Any] = {"enable_thinking": thinking}
        before = fmt.render(prefix, tools, add_generation_prompt=False, **kw)
        after = fmt.render([*prefix, turn], tools, add_generation_prompt=False, **kw)
        raw = after[len(before) + len("<|assistant|>") :]
        if family == "glm47" and reasoning:
            raw = raw[len("<think>") :]  # the prompt already opened thinking
        out.append((raw + ("<|observation|>" if calls else "<|user|>"), thinking))
    if PARSE_CASES.exists():
        for line in PARSE_CASES.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["family"] == family:
                out.append((rec["raw"], rec["enable_thinking"]))
    return out


# --- the baseline: plain regex parsing ---------------------------------------------------------

_STOPS = re.compile(r"(?:<\|observation\|>|<\|user\|>|<\|endoftext\|>)+\s*$")
_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
_PAIR = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.S)
_GLM4 = re.compile(r"^\s*([\w.-]+)\s*\n(\{.*\})\s*$", re.S)


def regex_parse(family: str, raw: str) -> tuple[str, str, list[tuple[str, Any]]]:
    text = _STOPS.sub("", raw)
    reasoning = ""
    if "</think>" in text:
        reasoning, text = text.split("</think>", 1)
    if family in ("glm45", "glm47"):
        calls = []
        for body in _CALL.findall(text):
            name = body.split("<arg_key>", 1)[0].strip()
            args = {}
            for k, v in _PAIR.findall(body):
                try:
                    args[k.strip()] = json.loads(v)
                except ValueError:
                    args[k.strip()] = v
            calls.append((name, args))
        return _CALL.sub("", text).strip(), reasoning, calls
    calls, texts = [], []
    for seg in text.split("<|assistant|>"):
        m = _GLM4.match(seg)
        try:
            calls.append((m.group(1), json.loads(m.group(2)))) if m else texts.append(seg.strip())
        except ValueError:
            texts.append(seg.strip())
    return "\n".join(texts), reasoning, calls


# --- timing ------------------------------------------------------------------------------------


def best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_family(family: str, rounds: int) -> dict[str, Any]:
    rng = random.Random(family)
    data = outputs(family, rng, 300)
    fmt = get_format(family)
    tools = [] if family == "chatglm3" else TOOLS
    size = sum(len(raw.encode()) for raw, _ in data)
    tokens = sum((len(raw) + 3) // 4 for raw, _ in data)
    deltas = [([raw[i : i + 4] for i in range(0, len(raw), 4)], t) for raw, t in data]

    def ours() -> None:
        for raw, t in data:
            fmt.parse(raw, tools, enable_thinking=t)

    def baseline() -> None:
        for raw, _ in data:
            regex_parse(family, raw)

    def streaming() -> None:
        for parts, t in deltas:
            p = fmt.stream_parser(tools, enable_thinking=t)
            for d in parts:
                p.feed(d)
            p.finish()

    def event_floor() -> None:  # the least any streaming parser pays: one event per delta
        for parts, _ in deltas:
            for d in parts:
                TextDelta(content=d)

    t_ours, t_base, t_stream = best(ours, rounds), best(baseline, rounds), best(streaming, rounds)
    t_floor = best(event_floor, rounds)

    convo: list[Message] = [SystemMessage(content="You are a customer-service bot.")]
    for _ in range(10):
        convo.append(UserMessage(content=sentence(rng, 30)))
        if family != "chatglm3":
            call = random_call(rng)
            convo.append(AssistantMessage(content="", tool_calls=(call,)))
            convo.append(ToolMessage(content='{"ok": true}', tool_call_id=call.id))
        convo.append(AssistantMessage(content=sentence(rng, 40)))
    t_render = best(lambda: fmt.render(convo, tools), rounds * 5)
    return {
        "family": family,
        "outputs": len(data),
        "bytes": size,
        "tokens": tokens,
        "parse_MBps": size / t_ours / 1e6,
        "regex_baseline_MBps": size / t_base / 1e6,
        "stream_us_per_token": t_stream / tokens * 1e6,
        "parse_us_per_token": t_ours / tokens * 1e6,
        "regex_us_per_token": t_base / tokens * 1e6,
        "event_floor_us_per_token": t_floor / tokens * 1e6,
        "stream_over_parse": t_stream / t_ours,
        "stream_minus_floor_over_parse": (t_stream - t_floor) / t_ours,
        "stream_over_regex": t_stream / t_base,
        "render_us_per_message": t_render / len(convo) * 1e6,
        "messages_per_conversation": len(convo),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = [bench_family(f, args.rounds) for f in FAMILIES]
    print(
        "| family | outputs | MB | parse MB/s | regex baseline MB/s | stream µs/token "
        "| parse µs/token | regex µs/token | event floor µs/token | stream / parse "
        "| stream / regex | (stream − floor) / parse | render µs/message |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['family']} | {r['outputs']} | {r['bytes'] / 1e6:.2f} | {r['parse_MBps']:.1f} "
            f"| {r['regex_baseline_MBps']:.1f} | {r['stream_us_per_token']:.2f} "
            f"| {r['parse_us_per_token']:.2f} | {r['regex_us_per_token']:.2f} "
            f"| {r['event_floor_us_per_token']:.2f} "
            f"| {r['stream_over_parse']:.1f}x | {r['stream_over_regex']:.1f}x "
            f"| {r['stream_minus_floor_over_parse']:.1f}x "
            f"| {r['render_us_per_message']:.1f} |"
        )
    out = ROOT / "benchmarks" / "results" / "glm_codec.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "delta_chars": 4}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
