"""Model strings, resolved in one place: `resolve_model("vllm:http://gpu-1:8000/v1#glm-4.5")`.

| string | model |
| --- | --- |
| a checkpoint folder, a hub id (`THUDM/glm-4-9b-chat-hf`), `local:<path or id>` | `LocalGLM` |
| `openai:<base_url>#<model>` (or `openai:<model>` for api.openai.com) | `OpenAICompatibleModel` |
| `vllm:<base_url>#<model>` (or `vllm:<model>` for 127.0.0.1:8000) | the same, vLLM dialect |
| `sglang:<base_url>#<model>` (or `sglang:<model>` for 127.0.0.1:30000) | the same, SGLang dialect |
| `zhipu:<model>` | the same, on Zhipu's open platform (`ZHIPUAI_API_KEY`) |
| `test` | `TestModel` |

Backends are imported only when a string names them, so resolving `zhipu:glm-4.5` never
imports torch.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from glm_agent.exceptions import UserError
from glm_agent.models.base import ChatModel

__all__ = ["PREFIXES", "default_mode", "resolve_model"]

#: Every prefix a model string may start with, and what it means.
PREFIXES: dict[str, str] = {
    "local": "local:<checkpoint dir or hub id> (LocalGLM; the prefix may be left out)",
    "openai": "openai:<base_url>#<model> (any OpenAI-compatible server)",
    "sglang": "sglang:<base_url>#<model> (SGLang)",
    "test": "test (TestModel: calls every tool, then answers)",
    "vllm": "vllm:<base_url>#<model> (vLLM)",
    "zhipu": "zhipu:<model> (Zhipu's open platform, key in ZHIPUAI_API_KEY)",
}
# vLLM / SGLang parse these families' tool calls (`glm45` / `glm47` parsers; GLM-4.1V has no
# tools, and its images go through the server's processor).
_SERVER_FAMILIES_WITH_PARSER = ("glm45", "glm47", "glm41v", "glm5", "glm52", "glm53")


def default_mode(model: str) -> str:
    """`chat` when vLLM / SGLang have a GLM tool parser for `model` (GLM-4.5+, GLM-5.x; also
    GLM-4.1V, which has no tools), else `completions`.

    glm-4-9b-chat, GLM-4-0414 and ChatGLM3 have no server-side tool-call parser, so glm-agent
    renders their prompts and parses their output itself. Names that are not GLM's get `chat`.
    """
    from glm_agent.glm import family_for_model

    try:
        family = family_for_model(model)
    except UserError:
        return "chat"
    return "chat" if family in _SERVER_FAMILIES_WITH_PARSER else "completions"


def _split_server(prefix: str, rest: str) -> tuple[str | None, str]:
    """`<base_url>#<model>` → (base_url, model); a bare `<model>` keeps the default URL."""
    if "#" in rest:
        base_url, _, model = rest.rpartition("#")
        if not base_url or not model:
            raise UserError(f"model string {prefix}:{rest!r} needs {PREFIXES[prefix]}")
        return base_url, model
    if "://" in rest:
        raise UserError(
            f"model string {prefix}:{rest} has a URL but no model name; "
            f"write {prefix}:{rest}#<model>"
        )
    return None, rest


def _construct(cls: type[Any], spec: str, *args: Any, **kwargs: Any) -> Any:
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            valid = ", ".join(n for n in params if n not in ("self", "model", "path_or_id"))
            raise UserError(
                f"{cls.__name__} (from model string {spec!r}) takes no setting "
                f"{', '.join(map(repr, unknown))}; settings: {valid}"
            )
    return cls(*args, **kwargs)


def resolve_model(spec: str | ChatModel, **settings: Any) -> ChatModel:
    """The `ChatModel` a model string names (a `ChatModel` is returned as it is).

    Args:
        spec: A model string (see the module docstring) or a ready model.
        **settings: Constructor arguments of the backend (`api_key`, `timeout`, `mode`,
            `settings=ModelSettings(...)`, `device`...); unknown ones are an error.

    Returns:
        The model, not yet connected (HTTP clients and weights load on first use).

    Raises:
        UserError: an unknown prefix (the message lists the valid ones), a malformed string,
            or a setting the backend does not take.
    """
    if isinstance(spec, ChatModel):
        if settings:
            raise UserError(
                f"settings {sorted(settings)} were given with a ready model {spec!r}; "
                "pass them to its constructor instead"
            )
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"a model must be a model string or a ChatModel, got {spec!r}")
    spec = spec.strip()
    if spec == "test":
        from glm_agent.models.test import TestModel

        model: ChatModel = _construct(TestModel, spec, **settings)
        return model
    prefix, sep, rest = spec.partition(":")
    # An existing path wins over prefix parsing (Windows drives, folders with colons).
    if not sep or Path(spec).exists() or (len(prefix) == 1 and rest.startswith(("\\", "/"))):
        prefix, rest = "local", spec
    if prefix == "local":
        from glm_agent.models.local import LocalGLM

        model = _construct(LocalGLM, spec, rest, **settings)
        return model
    if prefix in ("openai", "vllm", "sglang", "zhipu"):
        from glm_agent.models.openai_compat import OpenAICompatibleModel

        if prefix == "zhipu":
            base_url, name = None, rest
        else:
            base_url, name = _split_server(prefix, rest)
        if not name:
            raise UserError(f"model string {spec!r} names no model; expected {PREFIXES[prefix]}")
        kwargs: dict[str, Any] = {"provider": prefix, **settings}
        if base_url is not None:
            kwargs.setdefault("base_url", base_url)
        if prefix in ("vllm", "sglang"):
            kwargs.setdefault("mode", default_mode(name))
        model = _construct(OpenAICompatibleModel, spec, name, **kwargs)
        return model
    valid = "\n  ".join(PREFIXES[p] for p in sorted(PREFIXES))
    raise UserError(f"unknown model prefix {prefix!r} in {spec!r}; model strings:\n  {valid}")
