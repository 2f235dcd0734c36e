"""The OpenAI-compatible routes: models, chat completions (agents, the support bot, plain
models) and embeddings."""

# No `from __future__ import annotations`: FastAPI reads these route signatures at run time.
from typing import Annotated, Any

from fastapi import APIRouter, Header, Security
from fastapi.responses import JSONResponse, Response

from glm_agent.exceptions import NotFoundError
from glm_agent.serving._chat import chat_completion
from glm_agent.serving._config import ApiKey
from glm_agent.serving._deps import JsonRoute, State, key_with, sse_response
from glm_agent.serving._errors import HTTPProblem
from glm_agent.serving._schema import ChatCompletionRequest, EmbeddingRequest

__all__ = ["router"]

router = APIRouter(tags=["openai"], route_class=JsonRoute)
ChatKey = Annotated[ApiKey, Security(key_with("chat"))]


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "glm-agent"}


@router.get("/v1/models")
async def list_models(state: State, key: ChatKey) -> dict[str, Any]:
    """Agents and plain models, as OpenAI models."""
    names = [*sorted(state.agents), *sorted(state.models)]
    return {"object": "list", "data": [_model_card(n) for n in names]}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, state: State, key: ChatKey) -> dict[str, Any]:
    """One agent or plain model."""
    if model_id not in state.agents and model_id not in state.models:
        raise NotFoundError(f"the model {model_id!r} does not exist", code="model_not_found")
    return _model_card(model_id)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    state: State,
    key: ChatKey,
    x_session_id: Annotated[str | None, Header(max_length=200)] = None,
    x_customer_id: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """An agent run (its tools run here; a support agent goes through the support bot) or a
    plain model turn (client tools returned)."""
    if not state.ready and state.draining is not None and state.draining.is_set():
        raise HTTPProblem(503, "the server is shutting down", "server_error", "shutting_down")
    out = await chat_completion(state, body, key, x_session_id, x_customer_id)
    if isinstance(out, dict):
        return JSONResponse(out)
    return sse_response(out)


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, state: State, key: ChatKey) -> dict[str, Any]:
    """Embeddings from the knowledge base embedder of the agent named by `model`."""
    from glm_agent.serving._knowledge import embed

    return await embed(state, body)
