"""Model strings: every prefix, the default mode per GLM generation, and the errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from models_remote_server import ANSWER, FakeOpenAIServer

from glm_agent.exceptions import UserError
from glm_agent.messages import UserMessage
from glm_agent.models.function import FunctionModel
from glm_agent.models.openai_compat import OpenAICompatibleModel
from glm_agent.models.resolve import PREFIXES, resolve_model
from glm_agent.models.test import TestModel
from glm_agent.settings import ModelSettings


def remote(spec: str, **kw: object) -> OpenAICompatibleModel:
    model = resolve_model(spec, **kw)
    assert isinstance(model, OpenAICompatibleModel)
    return model


@pytest.mark.parametrize(
    ("spec", "base_url", "model", "provider", "mode", "family"),
    [
        (
            "vllm:http://gpu-1:8000/v1#glm-4.5",
            "http://gpu-1:8000/v1",
            "glm-4.5",
            "vllm",
            "chat",
            None,
        ),
        (
            "vllm:http://gpu-1:8000/v1#zai-org/GLM-4.7",
            "http://gpu-1:8000/v1",
            "zai-org/GLM-4.7",
            "vllm",
            "chat",
            None,
        ),
        (
            "vllm:http://gpu-1:8000/v1/#THUDM/glm-4-9b-chat-hf",
            "http://gpu-1:8000/v1",
            "THUDM/glm-4-9b-chat-hf",
            "vllm",
            "completions",
            "glm4",
        ),
        (
            "sglang:http://10.0.0.5:30000/v1#GLM-4-32B-0414",
            "http://10.0.0.5:30000/v1",
            "GLM-4-32B-0414",
            "sglang",
            "completions",
            "glm4-0414",
        ),
        ("sglang:glm-4.6", "http://127.0.0.1:30000/v1", "glm-4.6", "sglang", "chat", None),
        (
            "vllm:glm-4-9b-chat",
            "http://127.0.0.1:8000/v1",
            "glm-4-9b-chat",
            "vllm",
            "completions",
            "glm4",
        ),
        (
            "openai:https://llm.example.com/v1#glm-4-9b-chat",
            "https://llm.example.com/v1",
            "glm-4-9b-chat",
            "openai",
            "chat",
            None,
        ),
        ("openai:gpt-4o-mini", "https://api.openai.com/v1", "gpt-4o-mini", "openai", "chat", None),
        ("zhipu:glm-4.5", "https://open.bigmodel.cn/api/paas/v4", "glm-4.5", "zhipu", "chat", None),
        (
            "vllm:http://h:8000/v1#my-finetune",
            "http://h:8000/v1",
            "my-finetune",
            "vllm",
            "chat",
            None,
        ),
    ],
)
def test_remote_strings(
    spec: str, base_url: str, model: str, provider: str, mode: str, family: str | None
) -> None:
    m = remote(spec)
    assert (m.base_url, m.model, m.provider, m.mode, m.family) == (
        base_url,
        model,
        provider,
        mode,
        family,
    )


def test_settings_reach_the_backend(
    fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", "zk-from-env")
    model = remote(
        "zhipu:glm-4.5",
        base_url=fake_server.base_url + "/api/paas/v4",
        timeout=5.0,
        settings=ModelSettings(enable_thinking=True),
    )
    r = model.request_sync([UserMessage(content="hi")])
    assert r.message.content == ANSWER
    assert fake_server.headers[-1]["authorization"] == "Bearer zk-from-env"
    assert fake_server.last("glm-4.5")["thinking"] == {"type": "enabled"}
    model.close()
    forced = remote("vllm:http://h:8000/v1#glm-4-9b-chat", mode="chat")
    assert forced.mode == "chat"
    served = remote(f"vllm:{fake_server.base_url}/v1#glm-4.5:resolve")
    assert served.request_sync([UserMessage(content="hi")]).message.content == ANSWER
    served.close()


def test_test_model_and_ready_models() -> None:
    assert isinstance(resolve_model("test"), TestModel)
    assert (
        resolve_model("test", custom_output_text="ok")
        .request_sync([UserMessage(content="q")])
        .message.content
        == "ok"
    )
    ready = FunctionModel(lambda messages, info: "x")
    assert resolve_model(ready) is ready
    with pytest.raises(UserError, match="ready model"):
        resolve_model(ready, timeout=3)


def test_errors_list_the_valid_options() -> None:
    with pytest.raises(UserError) as info:
        resolve_model("ollama:llama3")
    for prefix in PREFIXES:
        assert f"{prefix}:" in str(info.value) or prefix == "test"
    assert "'ollama'" in str(info.value)
    with pytest.raises(UserError, match="no model name"):
        resolve_model("vllm:http://gpu-1:8000/v1")
    with pytest.raises(UserError, match="names no model"):
        resolve_model("zhipu:")
    with pytest.raises(UserError, match=r"'temprature'.*settings: .*timeout"):
        resolve_model("vllm:glm-4.5", temprature=0.3)
    with pytest.raises(UserError, match="unknown mode"):
        resolve_model("vllm:glm-4.5", mode="complete")
    with pytest.raises(UserError, match=r"LocalGLM.*'api_key'.*device"):
        resolve_model("/nonexistent/glm-4-9b-chat-hf", api_key="k")
    with pytest.raises(UserError, match="LocalGLM"):
        resolve_model("THUDM/glm-4-9b-chat-hf", base_url="http://x")


def test_resolving_remote_models_stays_light() -> None:
    code = (
        "import sys\n"
        "from glm_agent.models.resolve import resolve_model\n"
        "resolve_model('zhipu:glm-4.5'); resolve_model('vllm:glm-4-9b-chat')\n"
        "import glm_agent.models\n"
        "heavy = [m for m in ('torch', 'transformers', 'langchain_core', 'fastapi', 'openai')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
