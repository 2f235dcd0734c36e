"""GLM codec benchmark: parse throughput, streaming cost per token, render time per message,
and how parse time grows with adversarial outputs (linear time).

Baselines (same run):

- table 1: a plain one-shot regex parser of the same outputs, the way serving engines do it
  (vLLM-style: split / regex / json.loads, no schema typing, no fallbacks);
- table 2: the parser before issue 20 (`glm_agent.glm` at commit 38538cc, unpacked from git into
  a temporary folder and run in a subprocess), on outputs of 10K / 100K / 1M characters that
  are dense in `<`; a run over `--baseline-timeout` seconds is reported as such.

    .venv/bin/python benchmarks/glm_codec.py [--rounds N] [--sizes 10000,100000,1000000]
        [--baseline-timeout 60] [--no-scaling]

Prints markdown tables and writes benchmarks/results/glm_codec.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import subprocess
import sys
import tempfile
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
FAMILIES = ("glm4", "glm4-0414", "glm45", "glm47", "chatglm3", "glm41v", "glm5", "glm52", "glm53")
NO_TOOLS = ("chatglm3", "glm41v")
NO_SWITCH = ("glm4", "chatglm3", "glm4-0414", "glm41v")
BASELINE_COMMIT = "38538cc92aad28d29cc7c03f4af84a198465eb2e"  # main before issue 20
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
    tools = [] if family in NO_TOOLS else TOOLS
    for i in range(n):
        thinking = None if family in NO_SWITCH else rng.choice([True, False])
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
        if fmt.opens_thinking(thinking):
            raw = raw.removeprefix("<think>")  # the prompt already opened thinking
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
    if family in ("glm45", "glm47", "glm5", "glm52", "glm53"):
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
    tools = [] if family in NO_TOOLS else TOOLS
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
        if family not in NO_TOOLS:
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


# --- scaling on adversarial outputs: ours vs the parser before issue 20 ---------------------------

# Shared by this process and the baseline subprocess (which imports the old glm_agent).
SCALING_SRC = r"""
import time
from glm_agent.glm import get_format
from glm_agent.messages import ToolDefinition

TOOLS = [ToolDefinition(name="f", parameters={"type": "object",
         "properties": {"a": {"type": "string"}, "b": {}}})]
HEAD = "<tool_call>f<arg_key>a</arg_key><arg_value>"
SHAPES = {
    # a string value of n `<`
    "value of `<`": ("glm47", lambda n: HEAD + "<" * n + "</arg_value></tool_call>"),
    # a value full of almost-closing tags
    "value of `</arg_valu`": ("glm47", lambda n: HEAD + "</arg_valu" * (n // 10)
                              + "</arg_value></tool_call>"),
    # `<tool_call>` repeated, never closed
    "`<tool_call>` x n/11": ("glm47", lambda n: "<tool_call>" * (n // 11)),
    # an untyped value of `<` (JSON, then literal_eval fallbacks)
    "untyped value of `<`": ("glm47", lambda n: "<tool_call>f<arg_key>b</arg_key><arg_value>"
                             + "<" * n + "</arg_value></tool_call>"),
    # n/23 zero-argument calls, then a stray tag that makes them all damaged
    "calls x n/23, then `</arg_value>`": ("glm47", lambda n: "<tool_call>f</tool_call>"
                                          * (n // 23) + "</arg_value>"),
    # a glm4 JSON call whose string holds n `<`
    "glm4 call, string of `<`": ("glm4", lambda n: 'f\n{"a": "' + "<" * n + '"}'),
}


def measure(shape, n, mode):
    family, make = SHAPES[shape]
    fmt = get_format(family)
    raw = make(n)
    t = time.perf_counter()
    if mode == "parse":
        fmt.parse(raw, TOOLS, enable_thinking=False)
    else:  # 4-character deltas, as a server streams tokens
        p = fmt.stream_parser(TOOLS, enable_thinking=False)
        for i in range(0, len(raw), 4):
            p.feed(raw[i : i + 4])
        p.finish()
    return time.perf_counter() - t
"""


def unpack_baseline() -> Path | None:
    """`glm_agent` at `BASELINE_COMMIT`, unpacked into a temporary folder (None without git)."""
    dest = Path(tempfile.mkdtemp(prefix="glm_codec_baseline_"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "glm_agent"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return dest


def baseline_time(root: Path, shape: str, n: int, mode: str, timeout: float) -> float | None:
    """Seconds the old parser takes, or None when it runs past `timeout`."""
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r})\n{SCALING_SRC}\n"
        f"print(measure({shape!r}, {n}, {mode!r}))"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(out.stdout.strip().splitlines()[-1])


def bench_scaling(sizes: list[int], timeout: float) -> list[dict[str, Any]]:
    scope: dict[str, Any] = {}
    exec(SCALING_SRC, scope)  # the same shapes and timing code the baseline runs
    root = unpack_baseline()
    rows = []
    for shape in scope["SHAPES"]:
        for mode in ("parse", "stream"):
            gave_up = False
            for n in sizes:
                ours = min(scope["measure"](shape, n, mode) for _ in range(2))
                base: float | None = None
                if root is not None and not gave_up:
                    base = baseline_time(root, shape, n, mode, timeout)
                    gave_up = base is None  # larger sizes would only take longer
                rows.append(
                    {
                        "shape": shape,
                        "mode": mode,
                        "chars": n,
                        "ours_s": ours,
                        "baseline_s": base,
                        "baseline": "unavailable"
                        if root is None
                        else ("timeout" if base is None else "ok"),
                    }
                )
    return rows


def print_scaling(rows: list[dict[str, Any]], timeout: float) -> None:
    print(f"\nParse time on adversarial outputs; baseline: glm_agent.glm at {BASELINE_COMMIT[:7]}")
    print("| output | mode | chars | ours s | baseline s | baseline / ours |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["baseline"] == "ok":
            base, ratio = f"{r['baseline_s']:.4f}", f"{r['baseline_s'] / r['ours_s']:.1f}x"
        elif r["baseline"] == "timeout":
            base, ratio = f"> {timeout:g} (stopped)", f"> {timeout / r['ours_s']:.0f}x"
        else:
            base, ratio = "n/a", "n/a"
        print(
            f"| {r['shape']} | {r['mode']} | {r['chars']:,} | {r['ours_s']:.4f} | {base} "
            f"| {ratio} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--baseline-timeout", type=float, default=60.0)
    ap.add_argument("--no-scaling", action="store_true")
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
    scaling: list[dict[str, Any]] = []
    if not args.no_scaling:
        scaling = bench_scaling([int(x) for x in args.sizes.split(",")], args.baseline_timeout)
        print_scaling(scaling, args.baseline_timeout)
    out = ROOT / "benchmarks" / "results" / "glm_codec.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "delta_chars": 4,
        "scaling_baseline": BASELINE_COMMIT,
    }
    out.write_text(json.dumps({"meta": meta, "rows": rows, "scaling": scaling}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
