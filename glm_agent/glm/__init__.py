"""The GLM protocol: chat formats, the tool-call codec, a streaming parser, family facts.

Pure Python (no torch): used by the local runtime and by backends that send raw prompts.

```python
from glm_agent.glm import get_format, family_for_model

fmt = get_format(family_for_model("THUDM/glm-4-9b-chat-hf"))
prompt = fmt.render(messages, tools)
message = fmt.parse(raw_output, tools)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_agent.glm._builtin import BROWSER_TOOL, PYTHON_TOOL
from glm_agent.glm._chat_template_check import check_chat_template, render_chat_template
from glm_agent.glm._content import VISION_FAMILIES
from glm_agent.glm._facts import (
    FAMILIES,
    Family,
    FamilyFacts,
    facts_for_model,
    family_for_model,
    get_facts,
)
from glm_agent.glm._format import GLMFormat, get_format
from glm_agent.glm._render_glm4 import GLM4_PERSONA, GLM4_PERSONA_2024_06
from glm_agent.glm._stream import GLMStreamParser
from glm_agent.glm._typing import admitted_types, coerce_to_schema, type_value
from glm_agent.glm._vision import VisionFacts, image_tokens, media_tokens, vision_facts

if TYPE_CHECKING:
    from glm_agent.glm.tokenizer import GLMTokenizer, IncrementalDecoder

__all__ = [
    "BROWSER_TOOL",
    "FAMILIES",
    "GLM4_PERSONA",
    "GLM4_PERSONA_2024_06",
    "PYTHON_TOOL",
    "VISION_FAMILIES",
    "Family",
    "FamilyFacts",
    "GLMFormat",
    "GLMStreamParser",
    "GLMTokenizer",
    "IncrementalDecoder",
    "VisionFacts",
    "admitted_types",
    "check_chat_template",
    "coerce_to_schema",
    "facts_for_model",
    "family_for_model",
    "get_facts",
    "get_format",
    "image_tokens",
    "media_tokens",
    "render_chat_template",
    "type_value",
    "vision_facts",
]

_LAZY = {"GLMTokenizer", "IncrementalDecoder"}


def __getattr__(name: str) -> Any:
    # The tokenizer module imports tiktoken: load it only when asked for.
    if name in _LAZY:
        from glm_agent.glm import tokenizer

        return getattr(tokenizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
