"""A 32K-token prompt on a tiny model: chunked prefill keeps memory linear in the context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each length runs in a fresh process; a sampler thread records its peak RSS during generation.
SCRIPT = """
import json, os, sys, threading, time, torch
from transformers import AutoModelForCausalLM
from glm_agent.runtime import Engine, SamplingParams, tiny_config
torch.set_num_threads(1)
PAGE = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

n = int(sys.argv[1])
config = tiny_config("glm", 512, num_hidden_layers=1, num_attention_heads=2,
                     num_key_value_heads=1)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
engine = Engine(model, prefill_chunk=1024)
engine.generate(list(range(64)), SamplingParams(max_new_tokens=2))  # warm up allocators
base, peak, running = rss(), [0], [True]

def sample():
    while running[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
result = engine.generate([i % 500 for i in range(n)], SamplingParams(max_new_tokens=4))
running[0] = False
sampler.join()
print(json.dumps({"n": n, "growth": peak[0] - base, "new": len(result.token_ids)}))
"""


@pytest.mark.slow
def test_32k_prompt_memory_grows_linearly() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    growth = {}
    for n in (8192, 16384, 32768):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(n)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        row = json.loads(out.stdout.strip().splitlines()[-1])
        assert row["new"] == 4
        growth[n] = row["growth"]
    # A dense [T, T] float32 score matrix alone would be 4 GiB at 32K; linear growth doubles.
    assert growth[32768] < 1 * 2**30, growth
    step1 = growth[16384] - growth[8192]
    step2 = growth[32768] - growth[16384]
    assert step1 > 0, growth
    assert step2 < 3 * step1, growth  # quadratic growth would give 4x
