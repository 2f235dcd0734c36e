"""A real local GLM (tiny, random weights) behind the server, from an agent.yaml, end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serving_harness import live_server

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GLM4_TOKENIZER = SHARED / "glm" / "glm-4-9b-chat" / "tokenizer.model"


@pytest.mark.slow
@pytest.mark.shared
def test_tiny_glm_agent_served_over_openai_api(tmp_path: Path) -> None:
    if not GLM4_TOKENIZER.is_file():
        pytest.skip(f"needs the GLM-4 tokenizer at {GLM4_TOKENIZER}")
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import openai

    from glm_agent.runtime import tiny_glm
    from glm_agent.serving import app_from_yaml

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    ckpt = tiny_glm(tmp_path / "tiny", tokenizer_path=GLM4_TOKENIZER)
    yaml = tmp_path / "agent.yaml"
    yaml.write_text(
        f"name: tiny\nmodel:\n  name: {ckpt}\n  settings: {{max_tokens: 6, temperature: 0}}\n"
        "memory: none\nlimits: {max_steps: 2}\n",
        encoding="utf-8",
    )
    app = app_from_yaml([yaml])
    with live_server(app) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        messages = [{"role": "user", "content": "你好"}]
        r = c.chat.completions.create(model="tiny", messages=messages)  # type: ignore[arg-type]
        assert isinstance(r.choices[0].message.content, str)
        assert r.usage is not None and 0 < r.usage.completion_tokens <= 6 * 2
        assert r.usage.prompt_tokens > 0
        chunks = list(c.chat.completions.create(model="tiny", messages=messages, stream=True))  # type: ignore[arg-type]
        assert chunks[-1].choices[0].finish_reason == "stop"
