"""Local GLM runtime benchmark: our engine vs transformers' `generate`, measured in the same run.

CPU (default without CUDA): engine overhead on a small random GLM (GLM-4's real 151552 vocab):
prompt 512 tokens, 64 new tokens, greedy, several runs, median.

GPU (CUDA present): GLM-4-9B-shaped random weights in bf16 (from
../shared/glm/glm-4-9b-chat/config.json mapped to GlmConfig); ours with xformers and with SDPA
vs transformers' generate (SDPA) at 1K, 8K, 32K and 128K context: prefill tokens/s, time to
first token, decode tokens/s, peak memory; plus an xformers-vs-SDPA output check (bf16).

    .venv/bin/python benchmarks/runtime.py [--runs N] [--prompt N] [--new N] [--device cpu|cuda]

Prints a markdown table and writes benchmarks/results/runtime.json. Prefix reuse is off here
(each timed run prefills its whole prompt); `agent_runtime.py` measures it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GlmConfig

from glm_agent.runtime import Engine, SamplingParams, prefill
from glm_agent.runtime.engine import new_cache
from glm_agent.runtime.xformers_attention import register_xformers, xformers_available

ROOT = Path(__file__).resolve().parents[1]
GLM4_CONFIG = ROOT.parent / "shared" / "glm" / "glm-4-9b-chat" / "config.json"
RESULTS = ROOT / "benchmarks" / "results" / "runtime.json"


def glm4_9b_config() -> GlmConfig:
    """glm-4-9b-chat's remote-code config mapped to transformers' GlmConfig."""
    raw = json.loads(GLM4_CONFIG.read_text())
    return GlmConfig(
        vocab_size=raw["padded_vocab_size"],
        hidden_size=raw["hidden_size"],
        intermediate_size=raw["ffn_hidden_size"],
        num_hidden_layers=raw["num_layers"],
        num_attention_heads=raw["num_attention_heads"],
        num_key_value_heads=raw["multi_query_group_num"],
        head_dim=raw["kv_channels"],
        rms_norm_eps=raw["layernorm_epsilon"],
        max_position_embeddings=raw["seq_length"],
        attention_bias=raw["add_qkv_bias"],
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0 * raw["rope_ratio"],
            "partial_rotary_factor": 0.5,
        },
        eos_token_id=raw["eos_token_id"],
        pad_token_id=raw["pad_token_id"],
    )


def small_config() -> GlmConfig:
    """A small GLM for CPU: real vocabulary, a few narrow layers."""
    return GlmConfig(
        vocab_size=151552,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=32,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ours(engine: Engine, prompt: list[int], new: int) -> dict[str, float]:
    """Time to first token (prefill + first sample) and decode rate of one greedy run."""
    params = SamplingParams(max_new_tokens=new)
    sync(engine.device)
    start = time.perf_counter()
    first = 0.0
    n = 0
    for step in engine.stream([prompt], params):
        if step.token_id < 0:
            continue
        if n == 0:
            sync(engine.device)
            first = time.perf_counter() - start
        n += 1
    sync(engine.device)
    total = time.perf_counter() - start
    return {
        "ttft_s": first,
        "decode_tok_s": (n - 1) / max(total - first, 1e-9),
        "total_s": total,
        "tokens": n,
    }


def time_hf(model: Any, prompt: list[int], new: int) -> dict[str, float]:
    """transformers' generate (greedy, no stop tokens): TTFT from a 1-token run."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    kwargs = {"do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.inference_mode():
        sync(device)
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kwargs)
        sync(device)
        first = time.perf_counter() - start
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new, min_new_tokens=new, **kwargs)
        sync(device)
        total = time.perf_counter() - start
    n = out.shape[1] - len(prompt)
    return {
        "ttft_s": first,
        "decode_tok_s": (n - 1) / max(total - first, 1e-9),
        "total_s": total,
        "tokens": n,
    }


def median_runs(fn: Callable[[], dict[str, float]], runs: int) -> dict[str, float]:
    fn()  # warm-up
    rows = [fn() for _ in range(runs)]
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def interleaved_medians(
    fns: list[Callable[[], dict[str, float]]], runs: int
) -> list[dict[str, float]]:
    """Alternate the implementations run by run, so load changes on a shared machine hit all."""
    for fn in fns:
        fn()  # warm-up
    rows: list[list[dict[str, float]]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            rows[i].append(fn())
    return [{k: statistics.median(r[k] for r in rs) for k in rs[0]} for rs in rows]


def cpu_bench(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(small_config(), attn_implementation="sdpa").eval()
    prompt = torch.randint(0, 150000, (args.prompt,)).tolist()
    # Prefix reuse off: the same prompt again would be served from the cache, and what is
    # timed here is prefill and decode themselves (benchmarks/agent_runtime.py times reuse).
    engine = Engine(model, prefill_chunk=2048, prefix_cache_bytes=0)
    ours, hf = interleaved_medians(
        [lambda: time_ours(engine, prompt, args.new), lambda: time_hf(model, prompt, args.new)],
        args.runs,
    )
    same = engine.generate(prompt, SamplingParams(max_new_tokens=args.new)).token_ids
    with torch.inference_mode():
        ref = model.generate(
            torch.tensor([prompt]),
            max_new_tokens=args.new,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )[0, args.prompt :].tolist()
    rows = []
    for name, r in (
        ("glm_agent Engine (sdpa, static cache)", ours),
        ("transformers generate (sdpa, dynamic cache)", hf),
    ):
        rows.append({"impl": name, "prefill_tok_s": args.prompt / r["ttft_s"], **r})
    print(
        f"\nCPU, {torch.get_num_threads()} threads; small random GLM (hidden 256, 4 layers, "
        f"vocab 151552); prompt {args.prompt}, {args.new} new tokens, median of {args.runs} "
        "interleaved runs\n"
    )
    print("| impl | TTFT ms | prefill tok/s | decode tok/s | total s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['impl']} | {r['ttft_s'] * 1e3:.1f} | {r['prefill_tok_s']:.0f} | "
            f"{r['decode_tok_s']:.1f} | {r['total_s']:.3f} |"
        )
    speed = hf["total_s"] / ours["total_s"]
    print(
        f"\nend-to-end speedup vs transformers generate: {speed:.2f}x; "
        f"greedy tokens identical: {same == ref}"
    )
    return {
        "mode": "cpu",
        "threads": torch.get_num_threads(),
        "prompt": args.prompt,
        "new": args.new,
        "runs": args.runs,
        "rows": rows,
        "speedup": speed,
        "identical_greedy": same == ref,
    }


def gpu_bench(args: argparse.Namespace) -> dict[str, Any]:
    dev = torch.device("cuda")
    torch.manual_seed(0)
    with dev:
        model = AutoModelForCausalLM.from_config(
            glm4_9b_config(), dtype=torch.bfloat16, attn_implementation="sdpa"
        ).eval()
    backends = ["sdpa"]
    if xformers_available():
        register_xformers()
        backends.insert(0, "xformers")
    rows: list[dict[str, Any]] = []
    contexts = [int(c) for c in args.contexts.split(",")]
    for ctx in contexts:
        prompt = torch.randint(0, 150000, (ctx,)).tolist()
        impls: list[tuple[str, Callable[[], dict[str, float]]]] = []
        for backend in backends:

            def ours(b: str = backend, p: list[int] = prompt) -> dict[str, float]:
                model.set_attn_implementation(b)
                engine = Engine(
                    model, attention_backend=b, prefill_chunk=2048, prefix_cache_bytes=0
                )
                return time_ours(engine, p, args.new)

            impls.append((f"ours ({backend})", ours))

        def hf(p: list[int] = prompt) -> dict[str, float]:
            model.set_attn_implementation("sdpa")
            return time_hf(model, p, args.new)

        impls.append(("transformers generate (sdpa)", hf))
        for name, fn in impls:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                r = median_runs(fn, args.runs)
                row = {
                    "context": ctx,
                    "impl": name,
                    "prefill_tok_s": ctx / r["ttft_s"],
                    **r,
                    "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
                }
            except torch.OutOfMemoryError:
                row = {"context": ctx, "impl": name, "error": "OOM"}
            rows.append(row)
            print(row, flush=True)
    check = xformers_vs_sdpa(model) if "xformers" in backends else {"skipped": "no xformers"}
    print("\n| context | impl | TTFT ms | prefill tok/s | decode tok/s | peak GiB |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "error" in r:
            print(f"| {r['context']} | {r['impl']} | {r['error']} | | | |")
        else:
            print(
                f"| {r['context']} | {r['impl']} | {r['ttft_s'] * 1e3:.1f} | "
                f"{r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.1f} | {r['peak_gib']:.1f} |"
            )
    print(f"\nxformers vs sdpa: {check}")
    return {
        "mode": "gpu",
        "device": torch.cuda.get_device_name(),
        "new": args.new,
        "runs": args.runs,
        "rows": rows,
        "xformers_vs_sdpa": check,
    }


def xformers_vs_sdpa(model: Any) -> dict[str, Any]:
    """Last-position logits of the same prompts under both backends, within bf16 tolerance."""
    out: dict[str, Any] = {}
    for ctx in (1024, 8192):
        prompt = torch.randint(0, 150000, (1, ctx), device="cuda")
        pos = torch.arange(ctx, device="cuda")[None]
        logits = {}
        for b in ("sdpa", "xformers"):
            model.set_attn_implementation(b)
            with torch.inference_mode():
                logits[b] = prefill(model, prompt, new_cache(model, 1, ctx), None, pos, 2048)
        a, x = logits["sdpa"], logits["xformers"]
        assert a is not None and x is not None
        rel = float((a - x).abs().max() / a.abs().max())
        out[str(ctx)] = {
            "max_rel_diff": rel,
            "same_argmax": bool(a.argmax() == x.argmax()),
            "within_bf16": rel < 2e-2,
        }
    model.set_attn_implementation("sdpa")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--prompt", type=int, default=512, help="CPU prompt tokens")
    parser.add_argument("--new", type=int, default=None, help="new tokens per run")
    parser.add_argument("--contexts", default="1024,8192,32768,131072", help="GPU contexts")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        args.runs = args.runs or 3
        args.new = args.new or 32
        result = gpu_bench(args)
    else:
        args.runs = args.runs or 5
        args.new = args.new or 64
        result = cpu_bench(args)
    result["platform"] = platform.platform()
    result["torch"] = torch.__version__
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
