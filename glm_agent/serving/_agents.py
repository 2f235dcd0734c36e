"""The agent API: runs (JSON or typed SSE events), sessions, and knowledge routes."""

# No `from __future__ import annotations`: FastAPI reads these route signatures at run time,
# including aliases local to the function that builds the app.
import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Security, UploadFile
from fastapi.responses import JSONResponse, Response

from glm_agent.agent import AgentRun
from glm_agent.approval import Approval, Approved, Rejected
from glm_agent.memory import SessionStore
from glm_agent.messages import messages_to_openai
from glm_agent.results import RunDone, RunResult
from glm_agent.serving import _knowledge as kb
from glm_agent.serving._chat import drain, output_text
from glm_agent.serving._config import ApiKey
from glm_agent.serving._deps import JsonRoute, State, key_with, sse_response
from glm_agent.serving._errors import HTTPProblem, error_body
from glm_agent.serving._schema import AgentRunRequest, KnowledgeSearchRequest
from glm_agent.serving._state import ServerState, guarded_stream, sse

__all__ = ["router", "run_json"]

SessionId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


def run_json(result: RunResult[Any], agent: str, run_id: str) -> dict[str, Any]:
    """A run result as JSON: answer, transcript, tool calls, usage and timings."""
    usage = result.usage
    return {
        "id": run_id,
        "object": "agent.run",
        "agent": agent,
        "session_id": result.session_id,
        "status": result.status,
        "output": output_text(result),
        "messages": messages_to_openai(result.messages),
        "new_messages": messages_to_openai(result.new_messages),
        "tool_calls": [
            {
                "id": r.call.id,
                "name": r.call.name,
                "arguments": r.call.arguments,
                "status": r.status,
                "content": r.content,
                "seconds": round(r.seconds, 6),
            }
            for r in result.tool_calls
        ],
        "deferred_calls": [c.to_openai() for c in result.deferred_calls],
        "steps": len(result.steps),
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "requests": usage.requests,
        },
        "seconds": round(result.seconds, 6),
        "metadata": result.metadata,
    }


def _approvals(body: AgentRunRequest) -> dict[str, Approval]:
    return {
        call_id: Approved() if d.approved else Rejected(d.reason or "the call was rejected")
        for call_id, d in body.approvals.items()
    }


def _stores(state: ServerState) -> list[SessionStore]:
    seen: dict[int, SessionStore] = {}
    for a in state.agents.values():
        if a.agent.memory is not None:
            seen.setdefault(id(a.agent.memory), a.agent.memory)
    return list(seen.values())


RunsKey = Annotated[ApiKey, Security(key_with("runs"))]
SessionsKey = Annotated[ApiKey, Security(key_with("sessions"))]
KnowledgeKey = Annotated[ApiKey, Security(key_with("knowledge"))]
router = APIRouter(route_class=JsonRoute)


@router.get("/v1/agents", tags=["agents"])
async def list_agents(state: State, key: RunsKey) -> dict[str, Any]:
    """The served agents with their tools."""
    data = [
        {
            "name": a.name,
            "description": a.description,
            "tools": a.agent.tools.names,
            "memory": a.agent.memory is not None,
            "knowledge": a.agent.knowledge is not None,
        }
        for a in state.agents.values()
    ]
    return {"object": "list", "data": data}


@router.post("/v1/agents/{name}/runs", tags=["agents"], response_model=None)
async def create_run(name: str, body: AgentRunRequest, state: State, key: RunsKey) -> Response:
    """Run an agent on `input` within `session_id`: a JSON result, or typed SSE events."""
    served = state.agent(name)
    run_id = "run_" + uuid.uuid4().hex
    if body.input is None and (
        not body.approvals or body.session_id is None or served.agent.memory is None
    ):
        raise HTTPProblem(
            400,
            "give an input, or approvals with the session_id of a deferred run (on an "
            "agent with memory)",
            param="input",
        )

    def run(stream: bool) -> AgentRun[Any]:
        return served.agent.iter(
            body.input,
            stream=stream,
            session_id=body.session_id,
            tenant=key.tenant,
            metadata=body.metadata,
            approvals=_approvals(body) or None,
        )

    if not body.stream:
        result = await asyncio.wait_for(drain(run(False)), served.run_timeout)
        state.metrics.observe_run(served.name, result)
        return JSONResponse(run_json(result, served.name, run_id))

    async def events() -> AsyncIterator[str]:
        deadline = None if served.run_timeout is None else time.monotonic() + served.run_timeout
        async with run(True) as agent_run:
            async for event in agent_run:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError
                if isinstance(event, RunDone):
                    state.metrics.observe_run(served.name, event.result)
                    yield sse(run_json(event.result, served.name, run_id), event="run_done")
                else:
                    yield sse(event.model_dump_json(), event=event.kind)

    def on_error(problem: HTTPProblem) -> str:
        return sse(error_body(problem), event="error")

    return sse_response(guarded_stream(state, events(), on_error=on_error, closing=()))


@router.get("/v1/sessions", tags=["sessions"])
async def list_sessions(state: State, key: SessionsKey, limit: int = 100) -> dict[str, Any]:
    """The key's tenant's sessions, most recent first."""
    limit = max(1, min(limit, 1000))
    data: list[dict[str, Any]] = []
    for store in _stores(state):
        for info in await store.list_sessions(key.tenant, limit=limit):
            data.append(info.model_dump(mode="json"))
    data.sort(key=lambda d: d.get("updated_at") or 0, reverse=True)
    return {"object": "list", "data": data[:limit]}


@router.get("/v1/sessions/{session_id}", tags=["sessions"])
async def get_session(session_id: SessionId, state: State, key: SessionsKey) -> dict[str, Any]:
    """A session of the key's tenant with its transcript (404 for other tenants' ids)."""
    for store in _stores(state):
        session = await store.load(key.tenant, session_id)
        if session is not None:
            return {
                "id": session.session_id,
                "object": "session",
                "version": session.version,
                "metadata": session.metadata.model_dump(mode="json"),
                "created_at": session.created_at,
                "updated_at": session.updated_at,
                "messages": messages_to_openai(session.messages),
            }
    raise HTTPProblem(404, f"no session {session_id!r}", code="session_not_found")


@router.delete("/v1/sessions/{session_id}", tags=["sessions"])
async def delete_session(session_id: SessionId, state: State, key: SessionsKey) -> dict[str, Any]:
    """Delete a session of the key's tenant."""
    deleted = False
    for store in _stores(state):
        deleted = await store.delete(key.tenant, session_id) or deleted
    if not deleted:
        raise HTTPProblem(404, f"no session {session_id!r}", code="session_not_found")
    return {"id": session_id, "object": "session.deleted", "deleted": True}


@router.post("/v1/agents/{name}/knowledge/documents", tags=["knowledge"])
async def upload_documents(
    name: str, files: list[UploadFile], state: State, key: KnowledgeKey
) -> dict[str, Any]:
    """Add documents (multipart `files`) to the agent's knowledge base, for the key's tenant."""
    return await kb.upload(state, state.agent(name), key.tenant, files)


@router.post("/v1/agents/{name}/knowledge/reindex", tags=["knowledge"])
async def reindex(name: str, state: State, key: KnowledgeKey) -> dict[str, Any]:
    """Rebuild the index from the tenant's uploaded documents."""
    return await kb.reindex(state.agent(name), key.tenant)


@router.post("/v1/agents/{name}/knowledge/search", tags=["knowledge"])
async def search(
    name: str, body: KnowledgeSearchRequest, state: State, key: KnowledgeKey
) -> dict[str, Any]:
    """Search the tenant's documents in the agent's knowledge base."""
    return await kb.search(state.agent(name), key.tenant, body)
