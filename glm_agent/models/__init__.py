"""Chat models: the `ChatModel` protocol, test models, and the backends."""

from glm_agent.models.base import ChatModel, events_from_response, run_sync

__all__ = ["ChatModel", "events_from_response", "run_sync"]
