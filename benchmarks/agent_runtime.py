"""Agent runs on the local runtime with and without prefix reuse, measured in the same run.

A scripted support-agent run through the real `Agent` on `LocalGLM`: a long system prompt
(policies) and five tools, then five tool calls and an answer, i.e. six model requests on a
prompt that only grows, sized so that it holds about `context` tokens. The model's outputs are
forced by a logits hook (its weights are random), so every request really prefills and decodes.

Baseline, in the same run and on the same weights: `LocalGLM(prefix_cache_bytes=0)`, which
prefills every prompt whole. Rows per context:

- `off`: no prefix reuse.
- `on, cold`: prefix reuse, an empty cache at the start of the run.
- `on, warm`: prefix reuse, a second conversation (another question) after the first one: it
  shares the system prompt and tools with it (what every conversation of a support bot does).

Per run: total time, prompt tokens, prefill tokens computed, tokens actually new (of each
prompt, what is not a prefix of the run's previous prompt followed by the model's output; all
of the first prompt), TTFT per step (request start to the first token's logits).

CPU (default without CUDA): a small random GLM (hidden 256, 4 layers, GLM-4's real vocabulary
and tokenizer) written by `tiny_glm`, at 2K, 8K and 16K. GPU (`--device cuda`): GLM-4-9B-shaped
random bf16 weights built in memory (from ../shared/glm/glm-4-9b-chat/config.json), by default
at 32K only (`--device cpu --model-shape glm-4-9b --layers 1 --contexts 1024` checks that path
without a GPU).

    .venv/bin/python benchmarks/agent_runtime.py [--contexts 2048,8192,16384] [--device cpu]
    .venv/bin/python benchmarks/agent_runtime.py --device cuda --model-shape glm-4-9b

Prints a markdown table and writes benchmarks/results/agent_runtime.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from glm_agent import Agent
from glm_agent.messages import Message, ModelResponse, ToolDefinition
from glm_agent.models import ChatModel
from glm_agent.models.local import LocalGLM
from glm_agent.runtime import tiny_glm
from glm_agent.runtime.loading import LoadedModel
from glm_agent.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT.parent / "shared" / "glm" / "glm-4-9b-chat" / "tokenizer.model"
RESULTS = ROOT / "benchmarks" / "results" / "agent_runtime.json"
OBSERVATION, USER = 151338, 151336
SMALL_SHAPE = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 32,
}
RESULT_TOKENS = 160  # about this many tokens per tool result


def lookup_order(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number, e.g. "A-1042".
    """
    return _record("order", order_id)


def get_tracking(order_id: str) -> str:
    """Tracking events of an order's parcel.

    Args:
        order_id: The order number.
    """
    return _record("tracking", order_id)


def check_inventory(sku: str) -> str:
    """Stock of a product in every warehouse.

    Args:
        sku: The product's SKU.
    """
    return _record("inventory", sku)


def refund_policy(region: str) -> str:
    """The refund rules of a region.

    Args:
        region: Region code, e.g. "EU".
    """
    return _record("policy", region)


def create_ticket(summary: str) -> str:
    """Open a support ticket.

    Args:
        summary: One line saying what the customer needs.
    """
    return _record("ticket", summary)


TOOLS = [lookup_order, get_tracking, check_inventory, refund_policy, create_ticket]
CALLS = [
    ("lookup_order", {"order_id": "A-1042"}),
    ("get_tracking", {"order_id": "A-1042"}),
    ("check_inventory", {"sku": "KB-204"}),
    ("refund_policy", {"region": "EU"}),
    ("create_ticket", {"summary": "Replace damaged keyboard KB-204 from order A-1042"}),
]
ANSWER = "\nI have opened ticket T-7 for a replacement; it ships within two days."


def _record(kind: str, key: str) -> str:
    lines = [f"{kind} {key}"]
    n = 0
    while len(" ".join(lines)) < RESULT_TOKENS * 4:  # ~4 characters a token
        n += 1
        lines.append(f"field_{n}: value {n * 37 % 1000} updated 2024-0{n % 9 + 1}-1{n % 10}")
    return "\n".join(lines)


def system_prompt(model: LocalGLM, tools: list[ToolDefinition], tokens: int) -> tuple[str, int]:
    """Policies of a support bot, long enough that system prompt and tools hold `tokens`;
    returns the prompt and the tokens they hold."""
    lines = ["You are the support assistant of an electronics shop. Follow these policies."]
    n = 0
    while True:
        text = "\n".join(lines)
        size = len(model.tokenizer.encode_prompt(model.format.render([], tools))) + len(
            model.tokenizer.encode(text)
        )
        if size >= tokens:
            return text, size
        for _ in range(max(1, (tokens - size) // 30)):
            n += 1
            lines.append(
                f"Policy {n}: orders over {n * 10} EUR ship free; returns within {n % 30 + 14} "
                f"days; escalate case type {n % 7} to tier {n % 3 + 1}."
            )


class Script:
    """Logits hook: the model writes each scripted output in turn; notes when decoding starts."""

    def __init__(self, model: LocalGLM) -> None:
        self.model = model
        self.queue: list[list[int]] = []
        self.current: list[int] = []
        self.first_logits_at = 0.0

    def load(self, outputs: list[tuple[str, int]]) -> None:
        self.queue = [[*self.model.tokenizer.encode(t), stop] for t, stop in outputs]

    def __call__(self, logits: torch.Tensor, generated: list[list[int]]) -> torch.Tensor:
        if not generated[0]:
            self.first_logits_at = time.perf_counter()
            self.current = self.queue.pop(0)
        out = torch.full_like(logits, float("-inf"))
        out[:, self.current[min(len(generated[0]), len(self.current) - 1)]] = 0.0
        return out


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Measured(ChatModel):
    """Passes requests to a LocalGLM and records, per request, what its engine did."""

    def __init__(self, inner: LocalGLM, script: Script) -> None:
        self.inner, self.script = inner, script
        self.steps: list[dict[str, Any]] = []
        self.seen: list[int] = []  # the run so far: last prompt and the output after it

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """One request through the LocalGLM, measured."""
        s = settings or ModelSettings()
        ids = self.inner.tokenizer.encode_prompt(
            self.inner.format.render(messages, tools, enable_thinking=s.enable_thinking)
        )
        store = self.inner.prefix_cache
        before = store.stats.reused_tokens if store is not None else 0
        start = time.perf_counter()
        response = await self.inner.request(messages, tools, settings)
        total = time.perf_counter() - start
        reused = store.stats.reused_tokens - before if store is not None else 0
        new = len(ids) - _common(ids, self.seen)
        self.steps.append(
            {
                "prompt_tokens": len(ids),
                "reused_tokens": reused,
                "prefill_tokens": len(ids) - reused,
                "new_tokens": new,
                "ttft_s": self.script.first_logits_at - start,
                "seconds": total,
            }
        )
        self.seen = [*ids, *self.script.current]
        return response


def agent_run(model: LocalGLM, system: str, question: str) -> dict[str, Any]:
    """One scripted run (six requests); returns its totals and per-step records."""
    script = Script(model)
    outputs = [(f"{name}\n{json.dumps(args)}", OBSERVATION) for name, args in CALLS]
    script.load([*outputs, (ANSWER, USER)])
    model.logits_hook = script
    measured = Measured(model, script)
    agent = Agent(
        measured,
        tools=TOOLS,
        system_prompt=system,
        model_settings=ModelSettings(temperature=0, max_tokens=64),
    )
    start = time.perf_counter()
    result = agent.run(question)
    seconds = time.perf_counter() - start
    assert result.output == ANSWER.strip(), result.output
    steps = measured.steps
    return {
        "seconds": seconds,
        "requests": len(steps),
        "prompt_tokens": sum(s["prompt_tokens"] for s in steps),
        "prefill_tokens": sum(s["prefill_tokens"] for s in steps),
        "new_tokens": sum(s["new_tokens"] for s in steps),
        "last_prompt_tokens": steps[-1]["prompt_tokens"],
        "ttft_ms": [round(s["ttft_s"] * 1e3, 1) for s in steps],
        "steps": steps,
    }


def small_checkpoint(out: Path) -> Path:
    """The small random GLM of the CPU runs, as a checkpoint directory."""
    return tiny_glm(out, tokenizer_path=TOKENIZER, **SMALL_SHAPE)


def glm4_9b_loaded(out: Path, device: str, layers: int | None) -> tuple[Path, LoadedModel]:
    """GLM-4-9B-shaped random bf16 weights built on `device` (optionally with fewer layers,
    to check the script quickly), plus a tiny checkpoint that supplies the tokenizer."""
    from runtime import glm4_9b_config  # benchmarks/runtime.py
    from transformers import AutoModelForCausalLM

    from glm_agent.runtime.loading import resolve_attention

    ckpt = tiny_glm(out, tokenizer_path=TOKENIZER)
    config = glm4_9b_config()
    if layers:
        config.num_hidden_layers = layers
    dev = torch.device(device)
    attention = resolve_attention(None, dev)  # xformers on CUDA when installed, else SDPA
    torch.manual_seed(0)
    with dev:
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch.bfloat16, attn_implementation=attention
        ).eval()
    return ckpt, LoadedModel(model, "glm-4-9b-shaped", "glm", dev, torch.bfloat16, attention)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--model-shape", choices=["small", "glm-4-9b"], default=None)
    parser.add_argument("--contexts", default=None, help="comma-separated context sizes")
    parser.add_argument("--layers", type=int, default=None, help="glm-4-9b shape: fewer layers")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    shape = args.model_shape or ("glm-4-9b" if device == "cuda" else "small")
    default_contexts = "32768" if device == "cuda" else "2048,8192,16384"
    contexts = [int(c) for c in (args.contexts or default_contexts).split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        if shape == "glm-4-9b":
            ckpt, loaded = glm4_9b_loaded(Path(tmp) / "ckpt", device, args.layers)
            on = LocalGLM(ckpt, loaded=loaded)
        else:
            ckpt = small_checkpoint(Path(tmp) / "ckpt")
            on = LocalGLM(ckpt, device=device, prefix_cache_bytes=4 << 30)
        off = LocalGLM(ckpt, loaded=on.loaded, prefix_cache_bytes=0)
        store = on.prefix_cache
        assert store is not None
        tools = Agent(on, tools=TOOLS).tools.definitions()
        rows: list[dict[str, Any]] = []
        # A short run first: first-call costs, and how many tokens a run adds after the
        # system prompt and tools (so that the last prompt of each run holds about `context`).
        system, head = system_prompt(on, tools, 256)
        grows = agent_run(off, system, "warm-up")["last_prompt_tokens"] - head
        for ctx in contexts:
            system, _ = system_prompt(on, tools, ctx - grows)
            for mode, model, question in (
                ("off", off, "My keyboard from order A-1042 arrived broken."),
                ("on, cold", on, "My keyboard from order A-1042 arrived broken."),
                ("on, warm", on, "The keyboard I got in order A-1042 does not work."),
            ):
                if mode == "on, cold":
                    store.clear()
                row = {"context": ctx, "mode": mode, **agent_run(model, system, question)}
                rows.append(row)
                print(
                    f"{ctx} {mode}: {row['seconds']:.1f} s, prefill {row['prefill_tokens']}",
                    flush=True,
                )
        on.batcher.close()
        off.batcher.close()
    report(rows, device, shape)


def report(rows: list[dict[str, Any]], device: str, shape: str) -> None:
    """Print the table and the targets; write the JSON."""
    threads = torch.get_num_threads()
    print(f"\n{device} ({threads} threads), model {shape}; six requests per run\n")
    print(
        "| context | mode | last prompt | prompt tokens | prefill computed | new | "
        "computed / new | total s | TTFT per step (ms) |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        ratio = r["prefill_tokens"] / r["new_tokens"]
        ttft = ", ".join(f"{t:.0f}" for t in r["ttft_ms"])
        print(
            f"| {r['context']} | {r['mode']} | {r['last_prompt_tokens']} | {r['prompt_tokens']} | "
            f"{r['prefill_tokens']} | {r['new_tokens']} | {ratio:.2f}x | {r['seconds']:.2f} | "
            f"{ttft} |"
        )
    summary = {}
    for ctx in sorted({r["context"] for r in rows}):
        by = {r["mode"]: r for r in rows if r["context"] == ctx}
        off, cold = by["off"], by["on, cold"]
        summary[ctx] = {
            "work_vs_new": cold["prefill_tokens"] / cold["new_tokens"],
            "speedup": off["seconds"] / cold["seconds"],
            "speedup_warm": off["seconds"] / by["on, warm"]["seconds"],
        }
        print(
            f"\n{ctx}: prefill work with reuse {summary[ctx]['work_vs_new']:.2f}x the new tokens "
            f"(target <= 1.3x at 8K); wall time off / on {summary[ctx]['speedup']:.2f}x cold, "
            f"{summary[ctx]['speedup_warm']:.2f}x warm (target >= 3x at 8K)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "device": device,
                "model_shape": shape,
                "threads": threads,
                "platform": platform.platform(),
                "torch": torch.__version__,
                "rows": rows,
                "summary": summary,
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
