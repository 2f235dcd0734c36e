"""Loading checkpoints: tiny_glm round trip, clear errors, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from glm_agent.exceptions import ConfigError, UserError
from glm_agent.runtime import load_model, read_model_config, tiny_glm

ROOT = Path(__file__).resolve().parents[2]
GLM4_TOKENIZER = ROOT.parent / "shared" / "glm" / "glm-4-9b-chat" / "tokenizer.model"


@pytest.mark.shared
def test_tiny_glm_is_a_real_checkpoint(tiny_glm_dir: Path) -> None:
    config = json.loads((tiny_glm_dir / "config.json").read_text())
    assert config["model_type"] == "glm"
    assert config["vocab_size"] == 151552
    assert config["eos_token_id"] == [151329, 151336, 151338]
    assert config["pad_token_id"] == 151329
    generation = json.loads((tiny_glm_dir / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [151329, 151336, 151338]
    assert (tiny_glm_dir / "tokenizer.json").is_file()
    loaded = load_model(tiny_glm_dir, dtype="bf16")
    assert loaded.is_tiny and loaded.model_type == "glm"
    assert loaded.dtype == torch.bfloat16 and loaded.device.type == "cpu"
    assert loaded.model.model.embed_tokens.weight.shape == (151552, 64)


@pytest.mark.shared
@pytest.mark.parametrize("model_type", ["glm4", "glm4_moe"])
def test_tiny_other_model_types_load(tmp_path: Path, model_type: str) -> None:
    if not GLM4_TOKENIZER.is_file():
        pytest.skip("needs the GLM-4 tokenizer")
    path = tiny_glm(
        tmp_path / "m", model_type=model_type, vocab_size=2048, tokenizer_path=GLM4_TOKENIZER
    )
    loaded = load_model(path)
    assert loaded.model_type == model_type
    assert loaded.dtype == torch.float32 and loaded.attention_backend == "sdpa"
    assert (
        type(loaded.model).__name__
        == {"glm4": "Glm4ForCausalLM", "glm4_moe": "Glm4MoeForCausalLM"}[model_type]
    )


def test_missing_checkpoint_and_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint directory"):
        read_model_config(str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"no config\.json"):
        read_model_config(str(tmp_path))


@pytest.mark.parametrize(
    ("model_type", "hint"), [("llama", "supported: glm"), ("chatglm", "glm-4-9b-chat-hf")]
)
def test_unsupported_model_type(tmp_path: Path, model_type: str, hint: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(ConfigError, match=hint) as info:
        read_model_config(str(tmp_path))
    assert info.value.key == "model_type"
    assert "glm4_moe" in str(info.value)


def test_tiny_glm_without_tokenizer_says_where(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tokenizer not found"):
        tiny_glm(tmp_path / "x", tokenizer_path=tmp_path / "missing.model")


@pytest.mark.shared
def test_cli_tiny_glm_and_info(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from glm_agent.cli._runtime import app

    if not GLM4_TOKENIZER.is_file():
        pytest.skip("needs the GLM-4 tokenizer")
    runner = CliRunner()
    out = tmp_path / "cli-ckpt"
    made = runner.invoke(
        app, ["tiny-glm", str(out), "--model-type", "glm4", "--tokenizer", str(GLM4_TOKENIZER)]
    )
    assert made.exit_code == 0, made.output
    assert "noise" in made.output
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "model_type: glm4" in info.output
    assert "family: glm4-0414" in info.output
    assert "attention backend: sdpa" in info.output
    assert "model max context: 131072" in info.output
    assert "kv bytes per token: 512" in info.output  # 2 * 2 layers * 2 kv heads * 16 * 4 bytes


def test_importing_runtime_does_not_import_torch() -> None:
    code = (
        "import sys, glm_agent.runtime as r; assert 'torch' not in sys.modules, 'torch loaded'; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]


def test_lazy_exports_resolve() -> None:
    import glm_agent.runtime as runtime

    for name in runtime.__all__:
        assert getattr(runtime, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        _ = runtime.does_not_exist
