"""Per-family generation facts and the model-name → family lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from glm_agent.exceptions import UserError

__all__ = ["FAMILIES", "Family", "FamilyFacts", "facts_for_model", "family_for_model", "get_facts"]

Family = Literal[
    "glm4", "glm4-0414", "glm45", "glm47", "chatglm3", "glm41v", "glm5", "glm52", "glm53"
]
"""A GLM chat-format family."""

FAMILIES: tuple[Family, ...] = (
    "glm4",
    "glm4-0414",
    "glm45",
    "glm47",
    "chatglm3",
    "glm41v",
    "glm5",
    "glm52",
    "glm53",
)
"""Every family: the GLM-4 / ChatGLM3 ones, then GLM-4.1V-Thinking and the GLM-5.x line."""

STOP_MARKERS: tuple[str, ...] = ("<|observation|>", "<|user|>", "<|endoftext|>")
"""Stop-token texts a parser strips from the end of raw output."""

# glm-4-9b-chat's `tokenizer_config.json` (see ../shared/glm/README.md); GLM-4-0414 and
# GLM-4.5+ keep these ids (their vocabularies extend the same table).
_GLM4_SPECIAL: dict[str, int] = {
    "<|endoftext|>": 151329,
    "[MASK]": 151330,
    "[gMASK]": 151331,
    "[sMASK]": 151332,
    "<sop>": 151333,
    "<eop>": 151334,
    "<|system|>": 151335,
    "<|user|>": 151336,
    "<|assistant|>": 151337,
    "<|observation|>": 151338,
    "<|begin_of_image|>": 151339,
    "<|end_of_image|>": 151340,
    "<|begin_of_video|>": 151341,
    "<|end_of_video|>": 151342,
}
# GLM-4.5+ tokenizer additions (model cards / tokenizer_config; not checked against local files).
_GLM45_SPECIAL: dict[str, int] = {
    **_GLM4_SPECIAL,
    "<|begin_of_audio|>": 151343,
    "<|end_of_audio|>": 151344,
    "<|begin_of_transcription|>": 151345,
    "<|end_of_transcription|>": 151346,
    "<|code_prefix|>": 151347,
    "<|code_middle|>": 151348,
    "<|code_suffix|>": 151349,
    "<think>": 151350,
    "</think>": 151351,
    "<tool_call>": 151352,
    "</tool_call>": 151353,
    "<tool_response>": 151354,
    "</tool_response>": 151355,
    "<arg_key>": 151356,
    "</arg_key>": 151357,
    "<arg_value>": 151358,
    "</arg_value>": 151359,
    "/nothink": 151360,
}
# GLM-5.x / GLM-4.7-Flash tokenizer (vocabulary 154,880; ../shared/glm/README.md, from SGLang's
# glm53_flash_detector and the GLM-5.2 generation_config).
_GLM5_SPECIAL: dict[str, int] = {
    "<|endoftext|>": 154820,
    "[gMASK]": 154822,
    "[sMASK]": 154823,
    "<sop>": 154824,
    "<|system|>": 154826,
    "<|user|>": 154827,
    "<|assistant|>": 154828,
    "<|observation|>": 154829,
    "<think>": 154841,
    "</think>": 154842,
    "<tool_call>": 154843,
    "</tool_call>": 154844,
    "<arg_key>": 154847,
    "</arg_key>": 154848,
    "<arg_value>": 154849,
    "</arg_value>": 154850,
}
_GLM5_STOPS = (154820, 154827, 154829)
# ChatGLM3-6B's SentencePiece vocabulary: its own ids.
_CHATGLM3_SPECIAL: dict[str, int] = {
    "</s>": 2,
    "[MASK]": 64789,
    "[gMASK]": 64790,
    "[sMASK]": 64791,
    "sop": 64792,
    "eop": 64793,
    "<|system|>": 64794,
    "<|user|>": 64795,
    "<|assistant|>": 64796,
    "<|observation|>": 64797,
}
_GLM4_STOPS = (151329, 151336, 151338)


@dataclass(frozen=True)
class FamilyFacts:
    """What a runtime needs to generate with one GLM family."""

    name: Family
    """Family name (see `FAMILIES`)."""
    stop_token_ids: tuple[int, ...]
    """Token ids that end a turn (`generation_config.eos_token_id`)."""
    stop_strings: tuple[str, ...]
    """Texts of those tokens, for backends that stop on strings."""
    special_tokens: dict[str, int] = field(default_factory=dict)
    """Special-token text → id."""
    default_temperature: float = 0.8
    """Recommended sampling temperature."""
    default_top_p: float = 0.8
    """Recommended nucleus mass."""
    max_context: int = 131072
    """Longest context in tokens (prompt plus output)."""
    generation_prompt_suffix: str = "<|assistant|>"
    """What a prompt rendered with `add_generation_prompt=True` ends with (thinking at default)."""
    prompt_prefix: str = "[gMASK]<sop>"
    """What every rendered prompt starts with (already special tokens: add no BOS)."""
    supports_tools: bool = True
    """Whether the format can describe tools and tool calls."""
    supports_thinking: bool = False
    """Whether the format has a reasoning channel (`<think>`)."""
    verified: bool = False
    """Whether the renderer is proven byte-identical to a saved official template (tests)."""
    media: tuple[str, ...] = ()
    """What the model reads besides text (`image`, `video`); empty for text-only models. The
    glm45 family is both GLM-4.5 / 4.6 (text) and GLM-4.5V / 4.6V: `facts_for_model` tells
    them apart by name or `model_type`."""
    source: str = ""
    """Where these facts come from."""


_FACTS: dict[Family, FamilyFacts] = {
    "glm4": FamilyFacts(
        name="glm4",
        verified=True,
        stop_token_ids=_GLM4_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM4_SPECIAL),
        default_temperature=0.8,
        default_top_p=0.8,
        max_context=131072,
        source="glm-4-9b-chat config.json / generation_config.json (../shared/glm)",
    ),
    "glm4-0414": FamilyFacts(
        name="glm4-0414",
        stop_token_ids=_GLM4_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM4_SPECIAL),
        default_temperature=0.6,
        default_top_p=0.95,
        max_context=32768,
        supports_thinking=True,
        source="GLM-4-0414 / GLM-Z1 model cards (unverified here)",
    ),
    "glm45": FamilyFacts(
        name="glm45",
        verified=True,
        stop_token_ids=_GLM4_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM45_SPECIAL),
        default_temperature=0.6,
        default_top_p=0.95,
        max_context=131072,
        supports_thinking=True,
        source="GLM-4.5 model card (4.6: 202752 context, see facts_for_model)",
    ),
    "glm47": FamilyFacts(
        name="glm47",
        verified=True,
        stop_token_ids=_GLM4_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM45_SPECIAL),
        default_temperature=1.0,
        default_top_p=0.95,
        max_context=202752,
        generation_prompt_suffix="<|assistant|><think>",
        supports_thinking=True,
        source="GLM-4.7 / 4.7-Flash model cards (unverified here)",
    ),
    "chatglm3": FamilyFacts(
        name="chatglm3",
        verified=True,
        stop_token_ids=(2, 64795, 64797),
        stop_strings=("</s>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_CHATGLM3_SPECIAL),
        default_temperature=0.8,
        default_top_p=0.8,
        max_context=8192,
        prompt_prefix="[gMASK]sop",
        supports_tools=False,
        source="chatglm3-6b config (seq_length 8192; -32k / -128k variants longer)",
    ),
    "glm41v": FamilyFacts(
        name="glm41v",
        verified=True,
        stop_token_ids=_GLM4_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM4_SPECIAL),
        max_context=65536,
        generation_prompt_suffix="<|assistant|>\n",
        supports_tools=False,
        supports_thinking=True,
        media=("image", "video"),
        source="template: glm-4.1v-thinking.jinja (byte-exact); ids: GLM-V keeps glm-4-9b-chat's "
        "(README); context and sampling: model card, unverified here",
    ),
    "glm5": FamilyFacts(
        name="glm5",
        stop_token_ids=_GLM5_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM5_SPECIAL),
        default_temperature=1.0,
        default_top_p=0.95,
        max_context=202752,
        generation_prompt_suffix="<|assistant|><think>",
        supports_thinking=True,
        source="GLM-5 / 5.1: ids and stops per README; template UNVERIFIED (fw-ai/cookbook "
        "glm5.py, third-party); context and sampling as GLM-4.7, unverified",
    ),
    "glm52": FamilyFacts(
        name="glm52",
        stop_token_ids=_GLM5_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM5_SPECIAL),
        default_temperature=1.0,
        default_top_p=0.95,
        max_context=202752,
        generation_prompt_suffix="<|assistant|><think>",
        supports_thinking=True,
        source="GLM-5.2: ids and stops per README (generation_config); template UNVERIFIED "
        "(zai-org/GLM-5 README, fw-ai/cookbook); context and sampling unverified",
    ),
    "glm53": FamilyFacts(
        name="glm53",
        verified=True,
        stop_token_ids=_GLM5_STOPS,
        stop_strings=("<|endoftext|>", "<|user|>", "<|observation|>"),
        special_tokens=dict(_GLM5_SPECIAL),
        default_temperature=1.0,
        default_top_p=0.95,
        max_context=202752,
        generation_prompt_suffix="<|assistant|><think>",
        supports_thinking=True,
        media=("image", "video"),
        source="template: glm-5.3-flash.jinja (byte-exact); ids and stops per README; context "
        "and sampling unverified",
    ),
}


_BY_NAME: dict[str, FamilyFacts] = {str(k): v for k, v in _FACTS.items()}


def get_facts(family: str) -> FamilyFacts:
    """The generation facts of `family`.

    Raises:
        UserError: `family` is not one of `FAMILIES`.
    """
    facts = _BY_NAME.get(family)
    if facts is None:
        raise UserError(f"unknown GLM family {family!r}; families: {', '.join(FAMILIES)}")
    return facts


# transformers `model_type` → family, where the name does not say more.
_MODEL_TYPES: dict[str, Family] = {
    "chatglm": "glm4",  # remote-code glm-4-9b-chat (chatglm3-6b too, told apart by name)
    "glm": "glm4",  # glm-4-9b-chat-hf
    "glm4": "glm4-0414",
    "glm4_moe": "glm45",
    "glm4_moe_lite": "glm47",
    "glm4v": "glm41v",
    "glm4v_moe": "glm45",  # GLM-4.5V / 4.6V: GLM-4.5 tool calls (their template is not saved)
    "glm46v": "glm45",
    "glm_moe_dsa": "glm5",  # GLM-5 / 5.1 / 5.2 (5.2 is told apart by name)
    "glm5_next": "glm53",
}

_VISION_TYPES = frozenset({"glm4v", "glm4v_moe", "glm46v", "glm5_next"})

_NAME_RULES: tuple[tuple[re.Pattern[str], Family], ...] = (
    (re.compile(r"chatglm3"), "chatglm3"),
    (re.compile(r"glm-?z1|0414"), "glm4-0414"),
    (re.compile(r"glm-?5[._]?3"), "glm53"),
    (re.compile(r"glm-?5[._]?2"), "glm52"),
    (re.compile(r"glm-?5"), "glm5"),
    (re.compile(r"glm-?4[._]?1v"), "glm41v"),
    (re.compile(r"glm-?4[._]?7"), "glm47"),
    (re.compile(r"glm-?4[._]?[56]"), "glm45"),
    (re.compile(r"glm-?4"), "glm4"),
)


def family_for_model(name: str, model_type: str | None = None) -> Family:
    """The chat-format family of a model, from its name or path and/or `model_type`.

    The name decides when it says enough ("THUDM/glm-4-9b-chat-hf" → glm4, "zai-org/GLM-4.5-Air"
    and GLM-4.5V / 4.6V → glm45, "GLM-4-32B-0414" and GLM-Z1 → glm4-0414, "glm-4.7-flash" →
    glm47, "GLM-4.1V-9B-Thinking" → glm41v, GLM-5 / 5.1 → glm5, GLM-5.2 → glm52, GLM-5.3 and
    5.3-Flash → glm53); otherwise the transformers `model_type` (glm → glm4, glm4 → glm4-0414,
    glm4_moe → glm45, glm4v → glm41v, glm_moe_dsa → glm5, glm5_next → glm53) does. A family
    name is returned as it is.

    Raises:
        UserError: neither says which family.
    """
    if name in _BY_NAME:
        return _BY_NAME[name].name
    if model_type and model_type.lower() in _VISION_TYPES:
        # A vision architecture says more than a name: "glm4v-run3" is not glm-4-9b-chat.
        return _MODEL_TYPES[model_type.lower()]
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    if base in _MODEL_TYPES and model_type is None:  # a bare model_type given as the name
        return _MODEL_TYPES[base]
    for pattern, family in _NAME_RULES:
        if pattern.search(base):
            return family
    if model_type and model_type.lower() in _MODEL_TYPES:
        return _MODEL_TYPES[model_type.lower()]
    raise UserError(
        f"cannot tell the GLM family of model {name!r}"
        + (f" (model_type {model_type!r})" if model_type else "")
        + f"; families: {', '.join(FAMILIES)}; model types: {', '.join(sorted(_MODEL_TYPES))}"
    )


# glm-4v(-plus, -flash, -9b), GLM-4.1V, GLM-4.5V, GLM-4.6V(-Flash)
_VISION_NAME = re.compile(r"glm-?4(?:[._]?[156])?v")


def facts_for_model(name: str, model_type: str | None = None) -> FamilyFacts:
    """The family facts of a model, with its own context length where the name tells it, and
    `media` for vision models of text families: GLM-4.5V / 4.6V (glm45's text format) and
    Zhipu's glm-4v line (served by Zhipu's API; glm-agent has no renderer for glm-4v-9b's
    image format)."""
    facts = get_facts(family_for_model(name, model_type))
    base = name.lower()
    vision = (model_type or "").lower() in _VISION_TYPES or _VISION_NAME.search(base)
    if vision and not facts.media:
        facts = replace(facts, media=("image", "video"))
    if base.rstrip("/").endswith("-1m") or "-1m/" in base:
        return replace(facts, max_context=1048576)
    if re.search(r"glm-?4[._]?6(?!v)", base):
        return replace(facts, max_context=202752)
    if facts.name == "chatglm3":
        for tag, n in (("-32k", 32768), ("-128k", 131072)):
            if tag in base:
                return replace(facts, max_context=n)
    return facts
