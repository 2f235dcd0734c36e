"""Chat models: the `ChatModel` protocol, test models, and the backends."""

from typing import TYPE_CHECKING, Any

from glm_agent.models.base import ChatModel, events_from_response, iterate_sync, run_sync
from glm_agent.models.function import AgentInfo, FunctionModel
from glm_agent.models.test import TestModel

if TYPE_CHECKING:
    from glm_agent.models.langchain import from_langchain, to_langchain
    from glm_agent.models.local import LocalGLM
    from glm_agent.models.openai_compat import OpenAICompatibleModel
    from glm_agent.models.resolve import resolve_model

__all__ = [
    "AgentInfo",
    "ChatModel",
    "FunctionModel",
    "LocalGLM",
    "OpenAICompatibleModel",
    "TestModel",
    "events_from_response",
    "from_langchain",
    "iterate_sync",
    "resolve_model",
    "run_sync",
    "to_langchain",
]

# Backends load on first use: torch for LocalGLM, httpx for the HTTP one, langchain-core for
# the interop.
_LAZY = {
    "LocalGLM": "glm_agent.models.local",
    "OpenAICompatibleModel": "glm_agent.models.openai_compat",
    "from_langchain": "glm_agent.models.langchain",
    "resolve_model": "glm_agent.models.resolve",
    "to_langchain": "glm_agent.models.langchain",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
