"""Chat models: the `ChatModel` protocol, test models, and the backends."""

from glm_agent.models.base import ChatModel, events_from_response, iterate_sync, run_sync
from glm_agent.models.function import AgentInfo, FunctionModel
from glm_agent.models.test import TestModel

__all__ = [
    "AgentInfo",
    "ChatModel",
    "FunctionModel",
    "TestModel",
    "events_from_response",
    "iterate_sync",
    "run_sync",
]
