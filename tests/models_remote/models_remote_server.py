"""A real HTTP server on 127.0.0.1 that speaks the OpenAI protocol the way vLLM and Zhipu do.

The request's `model` picks the behaviour: `<scenario>` or `<scenario>:<anything>` (a unique
suffix gives a test its own failure counter). Scenarios:

- `glm` (default): a GLM-4.5 style turn: reasoning, then a `get_weather` call when tools are
  offered and the last message is the user's; a text answer after a tool result.
- `zhipu`: as Zhipu streams: whole tool calls in one delta, usage in the last chunk always.
- `429x<n>` / `500x<n>`: the first n requests fail with that status (429 has Retry-After).
- `400`: a client error with an error body (never retried).
- `dropx<n>`: the first n streams drop the connection before any output.
- `dropmid`: every stream drops the connection after some text.
- `nodone`: a stream that ends cleanly without `[DONE]` or a finish reason.
- `streamerror`: an error object in the middle of the stream, as vLLM sends one.
- `badjson`: a 200 answer whose body (or first chunk) is not JSON.
- `slow`: answers after 2 s.

Failure shapes of the servers' own GLM tool parsers (vLLM / SGLang issues), replayed when tools
are offered and the user spoke last (`REPAIR_SHAPES`; a plain answer otherwise):

- `rawmarkup`: the parser failed: the GLM-4.7 markup of two calls (one without arguments) is
  left in `content`, no `tool_calls`, finish reason `stop`.
- `strnum`: an integer argument typed as a string (`"days": "3"`), a double-encoded array.
- `dropnoarg`: streaming drops the no-argument call: finish reason `tool_calls`, no call; the
  non-streamed answer has it.
- `ltvalue`: streaming breaks on a value ending in `<`: the arguments stream as
  `{"expr": "1 <</arg_value>}` (not JSON); the non-streamed answer is right.
- `typed`: a `string | null` argument typed as a number and an untyped one as a string (`"42"`).

`/v1/completions` answers with raw GLM text: glm4's `name\\n{json}` for `glm-4-9b-chat` and
`glm-4-0414` models, glm47's `<tool_call>` XML for `glm-4.7`, `glm-5.1` and `glm-5.3` models (and
plain text after a tool result, `<|observation|>` in the prompt).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ARGS = '{"city": "Paris"}'
ANSWER = "It is sunny in Paris, 21 °C."
REASONING = "The user wants the weather; I should call get_weather."
GLM4_RAW = 'get_weather\n{"city": "Paris"}'
GLM47_RAW = (
    "<think>Weather needs the tool.</think>"
    "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>"
)


RAW_MARKUP = (
    "Let me check."
    "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
    "<arg_key>days</arg_key><arg_value>3</arg_value></tool_call>"
    "<tool_call>get_time</tool_call>"
)


def _call(cid: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}


# shape → (non-streamed message, its finish reason, streamed message, its finish reason); a
# streamed call's arguments are sent in 4-character pieces.
REPAIR_SHAPES: dict[str, tuple[dict[str, Any], str, dict[str, Any], str]] = {
    "rawmarkup": (
        {"role": "assistant", "content": RAW_MARKUP},
        "stop",
        {"role": "assistant", "content": RAW_MARKUP},
        "stop",
    ),
    "strnum": (
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _call("call_s1", "get_weather", '{"city": "Paris", "days": "3"}'),
                _call("call_s2", "lookup", '{"ids": "[1, 2]"}'),
            ],
        },
        "tool_calls",
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _call("call_s1", "get_weather", '{"city": "Paris", "days": "3"}'),
                _call("call_s2", "lookup", '{"ids": "[1, 2]"}'),
            ],
        },
        "tool_calls",
    ),
    "dropnoarg": (
        {"role": "assistant", "content": None, "tool_calls": [_call("call_t", "get_time", "{}")]},
        "tool_calls",
        {"role": "assistant", "content": None},
        "tool_calls",
    ),
    "ltvalue": (
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("call_c", "calc", '{"expr": "1 <"}')],
        },
        "tool_calls",
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("call_c", "calc", '{"expr": "1 <</arg_value>}')],
        },
        "tool_calls",
    ),
    "typed": (
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("call_y", "lookup", '{"code": 404, "note": "42"}')],
        },
        "tool_calls",
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("call_y", "lookup", '{"code": 404, "note": "42"}')],
        },
        "tool_calls",
    ),
}


class DroppedConnection(Exception):
    """Raised inside a streaming body: uvicorn then cuts the connection mid-chunked-body."""


@dataclass
class FakeOpenAIServer:
    """The running server: its base URL and every request it received."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def last(self, model: str) -> dict[str, Any]:
        """The last request body sent for `model`."""
        return next(r for r in reversed(self.requests) if r.get("model") == model)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(
    model: str,
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    text: str | None = None,
) -> str:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if text is not None:
        choice["text"] = text
        choice["logprobs"] = None
        obj = "text_completion"
    else:
        choice["delta"] = delta or {}
        choice["logprobs"] = None
        obj = "chat.completion.chunk"
    data: dict[str, Any] = {
        "id": "cmpl-1",
        "object": obj,
        "created": 1,
        "model": model,
        "choices": [choice] if delta is not None or text is not None or finish else [],
    }
    if usage is not None:
        data["usage"] = usage
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _wants_call(body: dict[str, Any]) -> bool:
    last = (body.get("messages") or [{}])[-1]
    return (
        bool(body.get("tools")) and last.get("role") == "user" and body.get("tool_choice") != "none"
    )


def _chat_message(
    body: dict[str, Any], scenario: str = "glm", stream: bool = False
) -> tuple[dict[str, Any], str]:
    if scenario in REPAIR_SHAPES and _wants_call(body):
        plain, plain_finish, streamed, streamed_finish = REPAIR_SHAPES[scenario]
        return (streamed, streamed_finish) if stream else (plain, plain_finish)
    if _wants_call(body):
        msg = {
            "role": "assistant",
            "content": None,
            "reasoning_content": REASONING,
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ARGS},
                }
            ],
        }
        return msg, "tool_calls"
    return {"role": "assistant", "content": ANSWER, "reasoning_content": REASONING}, "stop"


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _chat_stream(body: dict[str, Any], scenario: str) -> AsyncIterator[str]:
    model = body["model"]
    msg, finish = _chat_message(body, scenario, stream=True)
    yield _chunk(model, {"role": "assistant", "content": ""})
    if scenario == "badjson":
        yield "data: {not json\n\n"
        return
    for piece in _pieces(REASONING, 9):
        yield _chunk(model, {"reasoning_content": piece})
    if msg.get("content"):
        for piece in _pieces(msg["content"], 5):
            yield _chunk(model, {"content": piece})
            await asyncio.sleep(0)
        if scenario == "dropmid":
            raise DroppedConnection
        if scenario == "streamerror":  # how vLLM reports an engine failure mid-stream
            err = {"object": "error", "message": "engine died", "type": "InternalServerError"}
            yield f"data: {json.dumps(err)}\n\n"
            return
    if scenario == "nodone":
        return
    for i, call in enumerate(msg.get("tool_calls") or []):
        if scenario == "zhipu":  # Zhipu sends each call whole
            yield _chunk(model, {"tool_calls": [{**call, "index": i}]})
            continue
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        yield _chunk(model, {"tool_calls": [head]})
        for piece in _pieces(call["function"]["arguments"], 4):
            yield _chunk(model, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    usage = _usage(12, 7)
    if scenario == "zhipu":
        yield _chunk(model, {}, finish=finish, usage=usage)
    else:
        yield _chunk(model, {}, finish=finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            yield _chunk(model, usage=usage)
    yield "data: [DONE]\n\n"


def _completion_text(body: dict[str, Any]) -> str:
    prompt: str = body["prompt"]
    if "<|observation|>" in prompt or "get_weather" not in prompt:
        return ANSWER
    xml = any(v in body["model"] for v in ("4.7", "5.1", "5.3"))  # GLM-4.7 / GLM-5.x markup
    return GLM47_RAW if xml else GLM4_RAW


async def _completion_stream(body: dict[str, Any]) -> AsyncIterator[str]:
    model, text = body["model"], _completion_text(body)
    for piece in _pieces(text, 3):
        yield _chunk(model, text=piece)
    yield _chunk(model, text="", finish="stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield _chunk(model, usage=_usage(30, 9))
    yield "data: [DONE]\n\n"


def _failure(server: FakeOpenAIServer, model: str, scenario: str) -> Response | None:
    server.counts[model] += 1
    n = server.counts[model]
    if scenario.startswith("429x") and n <= int(scenario[4:]):
        return JSONResponse(
            {"error": {"message": "rate limited", "code": 429}},
            429,
            headers={"Retry-After": "0.05"},
        )
    if scenario.startswith("500x") and n <= int(scenario[4:]):
        return JSONResponse({"error": {"message": "engine restarting"}}, 500)
    if scenario == "400":
        return JSONResponse({"object": "error", "message": "tools: bad schema", "code": 400}, 400)
    return None


def build_app(server: FakeOpenAIServer) -> Starlette:
    """The ASGI app, recording requests into `server`."""

    async def record(request: Request) -> tuple[dict[str, Any], str]:
        body = await request.json()
        server.requests.append(body)
        server.headers.append(dict(request.headers))
        return body, str(body.get("model", "")).split(":")[0]

    async def chat(request: Request) -> Response:
        body, scenario = await record(request)
        failed = _failure(server, body["model"], scenario)
        if failed is not None:
            return failed
        if scenario == "slow":
            await asyncio.sleep(2)
        if body.get("stream"):
            if scenario.startswith("dropx") and server.counts[body["model"]] <= int(scenario[5:]):

                async def dropped() -> AsyncIterator[str]:
                    yield _chunk(body["model"], {"role": "assistant", "content": ""})
                    raise DroppedConnection

                return StreamingResponse(dropped(), media_type="text/event-stream")
            return StreamingResponse(_chat_stream(body, scenario), media_type="text/event-stream")
        if scenario == "badjson":
            return Response('{"id": "x", "choices": [', media_type="application/json")
        msg, finish = _chat_message(body, scenario)
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}
                ],
                "usage": _usage(12, 7),
            }
        )

    async def completions(request: Request) -> Response:
        body, scenario = await record(request)
        failed = _failure(server, body["model"], scenario)
        if failed is not None:
            return failed
        if body.get("stream"):
            return StreamingResponse(_completion_stream(body), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "cmpl-1",
                "object": "text_completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "text": _completion_text(body),
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": _usage(30, 9),
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/api/paas/v4/chat/completions", chat, methods=["POST"]),
        ]
    )


@contextlib.contextmanager
def running_server() -> Iterator[FakeOpenAIServer]:
    """Run the app with uvicorn in a thread on a free port of 127.0.0.1."""
    state = FakeOpenAIServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(state), log_level="critical", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    state.base_url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
