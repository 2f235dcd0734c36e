"""Operations: liveness, readiness and Prometheus metrics."""

# No `from __future__ import annotations`: FastAPI reads these route signatures at run time.
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from glm_agent.serving._deps import JsonRoute, State

__all__ = ["router"]

router = APIRouter(tags=["operations"], route_class=JsonRoute)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> Response:
    """Readiness: started and not shutting down (503 otherwise)."""
    body = {"status": "ready" if state.ready else "not ready", "agents": sorted(state.agents)}
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/metrics")
async def metrics(state: State) -> Response:
    """Prometheus metrics of this app."""
    text, content_type = state.metrics.render()
    return Response(text, media_type=content_type)
