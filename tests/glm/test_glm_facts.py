"""Family lookup by model name / model_type, and per-family generation facts."""

from __future__ import annotations

import json

import pytest
from glm_testdata import SHARED, need

from glm_agent.exceptions import UserError
from glm_agent.glm import FAMILIES, facts_for_model, family_for_model, get_facts, get_format


@pytest.mark.parametrize(
    ("name", "model_type", "family"),
    [
        ("THUDM/glm-4-9b-chat", None, "glm4"),
        ("THUDM/glm-4-9b-chat-hf", None, "glm4"),
        ("THUDM/glm-4-9b-chat-1m", None, "glm4"),
        ("/models/glm-4-9b-chat/", None, "glm4"),
        ("THUDM/GLM-4-32B-0414", None, "glm4-0414"),
        ("GLM-4-9B-0414", None, "glm4-0414"),
        ("THUDM/GLM-Z1-32B-0414", None, "glm4-0414"),
        ("zai-org/GLM-Z1-Rumination-32B", None, "glm4-0414"),
        ("zai-org/GLM-4.5", None, "glm45"),
        ("zai-org/GLM-4.5-Air", None, "glm45"),
        ("zai-org/GLM-4.6", None, "glm45"),
        ("zai-org/GLM-4.7", None, "glm47"),
        ("glm-4.7-flash", None, "glm47"),
        ("THUDM/chatglm3-6b", None, "chatglm3"),
        ("/ckpt/step-100", "glm", "glm4"),
        ("/ckpt/step-100", "glm4", "glm4-0414"),
        ("/ckpt/step-100", "glm4_moe", "glm45"),
        ("/ckpt/GLM-4.7", "glm4_moe", "glm47"),
        ("/ckpt/x", "chatglm", "glm4"),
        ("glm4_moe", None, "glm45"),
        ("glm4", None, "glm4"),
        ("glm47", None, "glm47"),
        ("zai-org/GLM-4.1V-9B-Thinking", None, "glm41v"),
        ("THUDM/GLM-4.1V-9B-Base", None, "glm41v"),
        ("zai-org/GLM-4.5V", None, "glm45"),
        ("zai-org/GLM-4.6V-Flash", None, "glm45"),
        ("THUDM/glm-4v-9b", None, "glm4"),
        ("zai-org/GLM-5", None, "glm5"),
        ("zai-org/GLM-5-FP8", None, "glm5"),
        ("zai-org/GLM-5.1", None, "glm5"),
        ("glm-5.1-fp8", None, "glm5"),
        ("zai-org/GLM-5.2", None, "glm52"),
        ("zai-org/GLM-5.3", None, "glm53"),
        ("zai-org/GLM-5.3-Flash", None, "glm53"),
        ("glm-5.3-flash-nvfp4", None, "glm53"),
        ("/ckpt/step-9", "glm4v", "glm41v"),
        ("/ckpt/step-9", "glm4v_moe", "glm45"),
        ("/ckpt/step-9", "glm46v", "glm45"),
        ("/ckpt/step-9", "glm_moe_dsa", "glm5"),
        ("/ckpt/GLM-5.2-FP8", "glm_moe_dsa", "glm52"),
        ("/ckpt/step-9", "glm5_next", "glm53"),
        ("glm53", None, "glm53"),
    ],
)
def test_family_for_model(name: str, model_type: str | None, family: str) -> None:
    assert family_for_model(name, model_type) == family


def test_unknown_model_lists_families() -> None:
    with pytest.raises(UserError, match="glm4, glm4-0414, glm45, glm47, chatglm3, glm41v, glm5"):
        family_for_model("meta-llama/Llama-3-8B", "llama")


def test_unknown_family_lists_families() -> None:
    with pytest.raises(UserError, match="families: glm4, glm4-0414"):
        get_format("glm6")
    with pytest.raises(UserError, match="families"):
        get_facts("gpt")


def test_glm4_facts_match_the_checkpoint_config() -> None:
    path = need(SHARED / "glm" / "glm-4-9b-chat")
    config = json.loads((path / "config.json").read_text())
    gen = json.loads((path / "generation_config.json").read_text())
    facts = get_format("glm4").facts
    assert list(facts.stop_token_ids) == config["eos_token_id"] == gen["eos_token_id"]
    assert facts.max_context == config["seq_length"]
    assert (facts.default_temperature, facts.default_top_p) == (gen["temperature"], gen["top_p"])
    assert facts.special_tokens["[gMASK]"] == 151331
    ids = {v: k for k, v in facts.special_tokens.items()}
    assert {ids[i] for i in facts.stop_token_ids} == set(facts.stop_strings)


def test_facts_per_family() -> None:
    for family in FAMILIES:
        facts = get_facts(family)
        assert facts.name == family
        assert all(facts.special_tokens[s] in facts.stop_token_ids for s in facts.stop_strings)
        prompt = get_format(family).render([], add_generation_prompt=True)
        assert prompt.endswith(facts.generation_prompt_suffix)
    assert facts_for_model("THUDM/glm-4-9b-chat-1m").max_context == 1048576
    assert facts_for_model("zai-org/GLM-4.6").max_context == 202752
    assert facts_for_model("THUDM/chatglm3-6b-32k").max_context == 32768
    assert facts_for_model("THUDM/glm-4-9b-chat").max_context == 131072
    assert facts_for_model("zai-org/GLM-4.6V").max_context == 131072  # not GLM-4.6's 202752


def test_glm5_facts_follow_the_readme() -> None:
    """GLM-5.x ids and stops as ../shared/glm/README.md lists them; verified families marked."""
    for family in ("glm5", "glm52", "glm53"):
        facts = get_facts(family)
        assert facts.stop_token_ids == (154820, 154827, 154829)
        assert facts.special_tokens["<tool_call>"] == 154843
        assert facts.special_tokens["</arg_value>"] == 154850
        assert facts.generation_prompt_suffix == "<|assistant|><think>"
    verified = {f for f in FAMILIES if get_facts(f).verified}
    assert verified == {"glm4", "glm45", "glm47", "chatglm3", "glm41v", "glm53"}
    assert not get_facts("glm41v").supports_tools
