"""Tracing test helpers: the span tree of finished spans, and one tiny real HTTP server on
127.0.0.1 that plays an OpenAI-compatible model, an HTTP tool's service and an OTLP/HTTP trace
receiver, recording every request it gets (headers included)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def tree(spans: Sequence[ReadableSpan]) -> list[Any]:
    """The finished spans as nested `[name, [children...]]`, children in start order."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(s)

    def build(parent: int | None) -> list[Any]:
        kids = sorted(by_parent.get(parent, []), key=lambda s: s.start_time or 0)
        return [[k.name, build(k.context.span_id if k.context else None)] for k in kids]

    return build(None)


def ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[int]:
    """Span ids of `span`'s parent, its parent's parent, and so on (among `spans`)."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    out: list[int] = []
    parent = span.parent
    while parent is not None:
        out.append(parent.span_id)
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return out


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The only finished span called `name`."""
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in spans]}"
    return found[0]


@dataclass
class Received:
    """One request the server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    """The running server: its base URL, the requests and the OTLP spans it received."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    otlp_spans: list[dict[str, Any]] = field(default_factory=list)

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [r.headers for r in self.requests if r.path.startswith(path)]


def _chat_reply(body: dict[str, Any]) -> dict[str, Any]:
    last = body["messages"][-1]
    if body.get("tools") and last["role"] == "user":
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"order_id": "A-1"}'},
        }
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": "Your order A-1 has shipped."}, "stop"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def _otlp_spans(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The spans of an OTLP/HTTP export request (protobuf, or OTLP/JSON)."""
    if "json" in content_type:
        data = json.loads(body)
        resources = data.get("resourceSpans", [])
        return [
            {
                "name": s["name"],
                "service": next(
                    (
                        a["value"].get("stringValue")
                        for a in r.get("resource", {}).get("attributes", [])
                        if a["key"] == "service.name"
                    ),
                    None,
                ),
                "trace_id": s.get("traceId"),
                "span_id": s.get("spanId"),
                "parent_id": s.get("parentSpanId") or None,
            }
            for r in resources
            for ss in r.get("scopeSpans", [])
            for s in ss.get("spans", [])
        ]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for r in request.resource_spans:
        service = next(
            (a.value.string_value for a in r.resource.attributes if a.key == "service.name"), None
        )
        for ss in r.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "name": s.name,
                        "service": service,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_id": s.parent_span_id.hex() or None,
                    }
                )
    return out


@contextmanager
def local_server() -> Iterator[LocalServer]:
    """The server on a free port of 127.0.0.1, for the duration of the block."""
    state = LocalServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> Received:
            length = int(self.headers.get("content-length") or 0)
            got = Received(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            with lock:
                state.requests.append(got)
            return got

        def do_GET(self) -> None:
            got = self._record()
            if got.path.startswith("/orders/"):
                order = {"order_id": got.path.rsplit("/", 1)[-1], "status": "shipped"}
                self._answer(200, json.dumps(order).encode(), "application/json")
            else:
                self._answer(404, b"{}", "application/json")

        def do_POST(self) -> None:
            got = self._record()
            if got.path == "/v1/traces":
                spans = _otlp_spans(got.body, got.headers.get("content-type", ""))
                with lock:
                    state.otlp_spans.extend(spans)
                self._answer(200, b"", got.headers.get("content-type", "application/x-protobuf"))
                return
            if got.path == "/v1/chat/completions":
                body = json.loads(got.body)
                reply = _chat_reply(body)
                if not body.get("stream"):
                    self._answer(200, json.dumps(reply).encode(), "application/json")
                    return
                choice = reply["choices"][0]
                end = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
                delta = {k: v for k, v in choice["message"].items() if v is not None}
                if "tool_calls" in delta:
                    delta["tool_calls"] = [{"index": 0, **delta["tool_calls"][0]}]
                chunks = [
                    {"id": "c", "model": body["model"], "choices": [{"index": 0, "delta": delta}]},
                    {
                        "id": "c",
                        "model": body["model"],
                        "choices": [end],
                        "usage": reply["usage"],
                    },
                ]
                text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                self._answer(200, text.encode(), "text/event-stream")
                return
            self._answer(404, b"{}", "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
