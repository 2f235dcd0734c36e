"""What one server holds: its agents and models, keys, metrics, and the draining flag."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glm_agent.agent import Agent
from glm_agent.models.base import ChatModel
from glm_agent.serving._config import ApiKey, KeyRing, ServerConfig, hash_key
from glm_agent.serving._errors import HTTPProblem, error_body, problem_for
from glm_agent.serving._metrics import Metrics

__all__ = ["ServedAgent", "ServerState", "guarded_stream", "sse"]

log = logging.getLogger("glm_agent.serving")

_OPEN_KEY = ApiKey(hash=hash_key(""), tenant="default", scopes=["admin"], name="anonymous")


@dataclass
class ServedAgent:
    """An agent as the server sees it."""

    agent: Agent[Any]
    run_timeout: float | None = None
    """Seconds one run may take (None: no limit)."""
    data_dir: Path | None = None
    """Where uploaded documents are kept."""
    description: str = ""
    mcp: bool = True
    """Offered as an MCP tool when the server serves MCP (`ServerConfig.mcp`). False for a
    support agent: the support bot is the only way it is reached."""

    @property
    def name(self) -> str:
        """The agent's name (the `model` clients ask for)."""
        return self.agent.name


@dataclass
class ServerState:
    """Everything the routes share."""

    agents: dict[str, ServedAgent]
    models: dict[str, ChatModel]
    config: ServerConfig
    keys: KeyRing
    metrics: Metrics = field(default_factory=Metrics)
    draining: asyncio.Event | None = None
    ready: bool = False
    loop: asyncio.AbstractEventLoop | None = None
    support: Any = None
    """The support bot (`glm_agent.serving.bot.SupportBot`) of this server, if it runs one:
    its agent is reached only through it, whatever the door."""

    @classmethod
    def build(
        cls,
        agents: Sequence[ServedAgent],
        models: Mapping[str, ChatModel],
        config: ServerConfig,
        keys: Sequence[ApiKey],
    ) -> ServerState:
        """A state; names of agents and models must be unique together."""
        by_name: dict[str, ServedAgent] = {}
        for a in agents:
            if a.name in by_name or a.name in models:
                from glm_agent.exceptions import UserError

                raise UserError(f"two agents or models are named {a.name!r}; names must be unique")
            by_name[a.name] = a
        return cls(by_name, dict(models), config, KeyRing(list(keys), config.rate_limit))

    def drain_event(self) -> asyncio.Event:
        """The event set when the server begins to shut down (created on the serving loop)."""
        if self.draining is None:
            self.draining = asyncio.Event()
            self.loop = asyncio.get_running_loop()
        return self.draining

    def request_shutdown(self) -> None:
        """`begin_shutdown` from any thread (a signal handler, a test)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.begin_shutdown)

    def begin_shutdown(self) -> None:
        """Stop accepting runs and end open streams with a final event (call on the loop)."""
        self.ready = False
        self.drain_event().set()

    def authenticate(self, token: str | None, scope: str, client: str = "") -> ApiKey:
        """The key a bearer token stands for, checked for `scope` and its rate limit."""
        if self.keys.open:
            key = _OPEN_KEY
        else:
            key_or_none = self.keys.find(token) if token else None
            if key_or_none is None:
                raise HTTPProblem(
                    401,
                    "missing or invalid API key; send it as 'Authorization: Bearer <key>'",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            key = key_or_none
            if not key.allows(scope):
                raise HTTPProblem(
                    403,
                    f"this API key lacks the {scope!r} scope; it has: {', '.join(key.scopes)}",
                    type="permission_error",
                    code="insufficient_scope",
                )
        wait = self.keys.wait(key, client)
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise HTTPProblem(
                429,
                f"rate limit exceeded; retry in {retry} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(retry)},
            )
        return key

    def agent(self, name: str) -> ServedAgent:
        """The agent called `name`, or a 404 listing the agents."""
        try:
            return self.agents[name]
        except KeyError:
            raise HTTPProblem(
                404,
                f"unknown agent {name!r}; agents: {', '.join(sorted(self.agents)) or '(none)'}",
                code="model_not_found",
                param="model",
            ) from None


def sse(data: Any, event: str | None = None, id: int | str | None = None) -> str:
    """One server-sent event (the only SSE encoder of the server); `data` is JSON-encoded
    unless it is a string."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = (f"event: {event}\n" if event else "") + (f"id: {id}\n" if id is not None else "")
    return f"{head}data: {text}\n\n"


async def guarded_stream(
    state: ServerState,
    source: AsyncIterator[str],
    *,
    on_error: Any,
    closing: Sequence[str],
) -> AsyncIterator[str]:
    """`source`'s events, ending cleanly on errors and on shutdown.

    An error mid-stream cannot change the status any more, so it becomes a last event
    (`on_error(problem)`) followed by `closing`; so does a shutdown, so clients never see a
    stream cut off without an ending. Quiet streams get keep-alive comments.
    """
    drain = asyncio.ensure_future(state.drain_event().wait())
    it = aiter(source)
    try:
        while True:
            step = asyncio.ensure_future(anext(it))
            while True:
                done, _ = await asyncio.wait(
                    {step, drain},
                    timeout=state.config.stream_heartbeat,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done:
                    break
                yield ": keep-alive\n\n"
            if step in done:
                try:
                    yield step.result()
                except StopAsyncIteration:
                    return
                continue
            step.cancel()
            # Let the cancelled step unwind before the source is closed below.
            await asyncio.wait({step})
            problem = HTTPProblem(
                503, "the server is shutting down", type="server_error", code="shutting_down"
            )
            state.metrics.errors.labels(problem.code).inc()
            yield on_error(problem)
            for item in closing:
                yield item
            return
    except Exception as e:
        problem = problem_for(e)
        if problem.status >= 500:
            log.error("stream failed", exc_info=e)
        state.metrics.errors.labels(problem.code or "error").inc()
        yield on_error(problem)
        for item in closing:
            yield item
    finally:
        drain.cancel()
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def error_event(problem: HTTPProblem) -> str:
    """An error as a data-only SSE event in OpenAI's error shape."""
    return sse(error_body(problem))
