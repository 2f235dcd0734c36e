"""The test shop API (FastAPI) served by uvicorn in a thread on 127.0.0.1."""

import asyncio
import base64
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TOKEN = "s3cret-token"


def make_app() -> Any:
    from fastapi import FastAPI, Header, HTTPException, Request
    from fastapi.responses import PlainTextResponse, Response
    from pydantic import BaseModel

    app = FastAPI(title="shop", servers=[{"url": "http://127.0.0.1"}])
    app.state.hits = Counter()

    class NewTicket(BaseModel):
        subject: str
        priority: int = 3

    @app.get("/orders/{order_id}", operation_id="get_order")
    def get_order(
        order_id: str, expand: bool = False, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        """Look up an order."""
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "bad or missing token")
        items = [{"sku": "A1", "qty": 1}, {"sku": "B2", "qty": 2}]
        return {"data": {"id": order_id, "status": "shipped", "items": items, "expand": expand}}

    @app.post("/tickets", operation_id="create_ticket")
    def create_ticket(ticket: NewTicket, notify: bool = False) -> dict[str, Any]:
        """Open a support ticket."""
        return {"created": ticket.model_dump(), "notify": notify}

    @app.post("/echo", include_in_schema=False)
    async def echo(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {
            "json": (await request.json()) if body else None,
            "query": dict(request.query_params),
            "headers": {k: v for k, v in request.headers.items() if k.startswith("x-")},
        }

    @app.get("/basic", include_in_schema=False)
    def basic(authorization: str | None = Header(None)) -> dict[str, str]:
        expected = "Basic " + base64.b64encode(b"ann:pw").decode()
        if authorization != expected:
            raise HTTPException(401, "bad credentials")
        return {"user": "ann"}

    @app.api_route("/flaky/{key}", methods=["GET", "POST"], include_in_schema=False)
    def flaky(key: str, fail: int = 1) -> Response:
        app.state.hits[key] += 1
        if app.state.hits[key] <= fail:
            return PlainTextResponse("temporarily down", status_code=503)
        return PlainTextResponse(
            f'{{"attempts": {app.state.hits[key]}}}', media_type="application/json"
        )

    @app.get("/slow", include_in_schema=False)
    async def slow(seconds: float) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    @app.get("/big", include_in_schema=False)
    def big(n: int) -> PlainTextResponse:
        return PlainTextResponse("x" * n)

    @app.get("/status/{code}", include_in_schema=False)
    def status(code: int) -> PlainTextResponse:
        return PlainTextResponse(f"nope: {code} " + "y" * 2000, status_code=code)

    return app


@dataclass
class Server:
    """The running test server."""

    url: str
    app: Any

    def hits(self, key: str) -> int:
        return int(self.app.state.hits[key])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
