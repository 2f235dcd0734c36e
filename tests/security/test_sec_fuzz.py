"""Fuzzing every route of a full server on 127.0.0.1 (issue 16): no input answers 5xx.

One server holds everything a deployment can: an agent with tools, memory and a knowledge
base, a plain model, the support bot with its webhook and Feishu channels, the console, the
widget pages and MCP, behind API keys.

- Every operation of the OpenAPI document (the OpenAI-compatible API, agents, sessions,
  knowledge, the support bot's customer, console and channel routes, operations, web pages)
  is fuzzed by schemathesis with valid and invalid requests: never a 5xx, responses as
  documented, errors in OpenAI's shape.
- What the document cannot describe is fuzzed with hypothesis: webhook bodies (valid and
  invalid signatures, odd timestamps, nested, huge and non-Unicode values), Feishu events in
  plain and encrypted bodies, widget messages, `Last-Event-ID` and `after` on the event
  streams, and MCP's JSON-RPC.

Most cases carry good credentials and ids of real objects (an API key, a console token, a
conversation and its customer token, an agent's name), so that they get past authentication
to the code behind it; the others are sent as generated.

The suite runs a small, derandomized number of examples per route (about a minute in all).
`GLM_AGENT_FUZZ_EXAMPLES=<n>` raises it, `GLM_AGENT_FUZZ_REPORT=<file>` writes what was tried
(routes x cases x 5xx) as JSON, and `scripts/fuzz` does both and prints the table.
"""

from __future__ import annotations

import atexit
import base64
import copy
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from bot_harness import Customer, Shop, console_login, live_server, make_bot
from fuzz_strategies import BODIES, FRESH, HEADER, JSON, TEXT, encode, fresh, mutated
from hypothesis import strategies as st
from serving_harness import order_status, plain_model

from glm_agent import Agent
from glm_agent.memory import SQLiteStore
from glm_agent.models import TestModel
from glm_agent.retrieval import KnowledgeBase, TestEmbedder
from glm_agent.serving import ApiKey, RateLimit, ServedAgent, ServerConfig, create_app, hash_key
from glm_agent.serving.bot import (
    ChannelsConfig,
    FeishuConfig,
    SupportBot,
    WebhookConfig,
    feishu_encrypt,
    feishu_signature,
    sign_webhook,
)

EXAMPLES = int(os.environ.get("GLM_AGENT_FUZZ_EXAMPLES") or 0)
"""Examples per route (0: the suite's small default for each test)."""

API_KEY = "gak_fuzz-admin-key-000000000000000000000000"
SECRET = "a-webhook-secret-for-the-fuzzer"
FEISHU_KEY = "feishu-encrypt-key-for-the-fuzzer"
FEISHU_TOKEN = "feishu-verification-token"


def fuzz_settings(default: int) -> hypothesis.settings:
    """Derandomized (the same cases on every run), no example database, no deadline."""
    return hypothesis.settings(
        max_examples=EXAMPLES or default,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        print_blob=True,
    )


# --- what was tried ------------------------------------------------------------------------


@dataclass
class Tally:
    """Cases sent and 5xx answers seen, per route (written out for `scripts/fuzz`)."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, group: str, route: str, status: int) -> None:
        row = self.rows.setdefault(
            f"{group} {route}", {"group": group, "route": route, "cases": 0, "5xx": 0}
        )
        row["cases"] += 1
        row["5xx"] += status >= 500


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    out = os.environ.get("GLM_AGENT_FUZZ_REPORT")
    if out:
        Path(out).write_text(json.dumps(list(TALLY.rows.values()), indent=1))


# --- the server ----------------------------------------------------------------------------


def _bot(folder: Path) -> SupportBot:
    channels = ChannelsConfig(
        webhook=WebhookConfig(secret=SECRET),
        feishu=FeishuConfig(
            verification_token=FEISHU_TOKEN, encrypt_key=FEISHU_KEY, api_base="http://127.0.0.1:9"
        ),
    )
    bot = make_bot(folder, Shop(), channels=channels)
    bot.heartbeat = 0.2

    async def to_feishu(conv: Any, text: str) -> None:
        """Feishu's open API is not reachable from tests: replies to Feishu chats are dropped."""

    bot.deliverers["feishu"] = to_feishu
    return bot


def _app(folder: Path) -> tuple[Any, SupportBot, Agent[str]]:
    helpdesk: Agent[str] = Agent(
        TestModel(),  # any input gets tool calls and an answer (a scripted model would choke)
        tools=[order_status],
        name="helpdesk",
        knowledge=KnowledgeBase(folder / "kb", embedder=TestEmbedder(dim=32)),
        memory=SQLiteStore(str(folder / "helpdesk.db")),
    )
    key = ApiKey(
        hash=hash_key(API_KEY),
        tenant="acme",
        scopes=["admin"],
        rate_limit=RateLimit(requests_per_minute=1e9, burst=10**9),
    )
    bot = _bot(folder)
    app = create_app(
        [ServedAgent(helpdesk, data_dir=folder / "data")],
        models={"plain": plain_model()},
        config=ServerConfig(keys=[key], mcp=True),
        support=bot,
    )
    return app, bot, helpdesk


# Built at import: schemathesis makes one test per operation of the app's document (its lazy,
# fixture-made schemas do not run under this pytest).
FOLDER = Path(tempfile.mkdtemp(prefix="glm-fuzz-"))
atexit.register(shutil.rmtree, FOLDER, ignore_errors=True)
APP, BOT, HELPDESK = _app(FOLDER)
EDGES = {
    "integer": [2**63, -(2**63) - 1, 2**64, 10**30, 2**53 + 1, -1, 0],
    "string": ["\x00", "１２３", "..", "%2e%2e", "=HYPERLINK(1)", "x" * 5000],
}
"""Values generators seldom reach: past SQLite's 64-bit integers, NUL, full-width digits, dot
segments, formulas, long strings. (Lone surrogates, which schemathesis cannot send, are sent
by `test_json_bodies` below.)"""
schema = schemathesis.openapi.from_dict(
    APP.openapi(),
    config=schemathesis.Config.from_dict(
        {
            "dictionaries": {kind: {"values": values} for kind, values in EDGES.items()},
            "generation": {
                "mode": "all",
                "dictionaries": {kind: {"dictionary": kind, "probability": 0.2} for kind in EDGES},
            },
        }
    ),
)


@dataclass
class Target:
    """The running server and real things to aim at."""

    url: str
    bot: SupportBot
    client: httpx.Client
    conversation: Customer
    console: dict[str, str]
    api: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {API_KEY}"})


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with live_server(APP) as url, httpx.Client(base_url=url, timeout=30) as client:
        client.post(
            "/v1/agents/helpdesk/runs",
            json={"input": "my name is Ada", "session_id": "s-1"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ).raise_for_status()
        conversation = Customer(client)
        conversation.say("where is A-1001?")
        console = console_login(client)
        client.cookies.clear()  # the login's cookie: cases carry the credentials they choose
        yield Target(url, BOT, client, conversation, console)
    BOT.close()
    HELPDESK.close()


STREAMS = ("/v1/support/conversations/{conversation_id}/events", "/v1/console/events")
"""Endless event streams: fuzzed below, with good credentials, by reading their first event."""


def _pick(case: schemathesis.Case, what: str, options: list[Any]) -> Any:
    """One of `options`, chosen by the case's own data: the same case (replayed while
    hypothesis shrinks it) always gets the same choice."""
    data = (case.path_parameters, case.query, case.headers, case.body, what)
    return options[zlib.crc32(repr(data).encode()) % len(options)]


def _aim(case: schemathesis.Case, target: Target) -> None:
    """Give the case good credentials and real ids (three cases in four)."""
    path = case.path
    if path in STREAMS or path == "/v1/console/logout" or not _pick(case, "aim", [0, 1, 1, 1]):
        return  # as generated (logout: it would revoke the console token the others use)
    headers = case.headers = dict(case.headers or {})
    params = case.path_parameters = dict(case.path_parameters or {})
    if path.startswith("/v1/console/"):
        headers.update(target.console)
    elif path.startswith("/v1/support/conversations/"):
        headers["X-Customer-Token"] = target.conversation.token
    elif path.startswith("/v1/"):
        headers.update(target.api)
    if "conversation_id" in params:
        params["conversation_id"] = target.conversation.id
    real = {
        "name": ["helpdesk", target.bot.agent.name],
        "model_id": ["helpdesk", "plain"],
        "session_id": ["s-1"],
        "answer_id": [1, 2],
        "review_id": [1, 2],
    }
    for name, values in real.items():
        if name in params:
            params[name] = _pick(case, name, [*values, params[name]])
    if isinstance(case.body, dict) and "model" in case.body:
        models = ["helpdesk", "plain", target.bot.agent.name, case.body["model"]]
        case.body["model"] = _pick(case, "model", models)


def _error_shape(case: schemathesis.Case, response: Any) -> None:
    if response.status_code < 400 or not case.path.startswith(("/v1/", "/mcp")):
        return
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body


@schema.parametrize()
@fuzz_settings(default=12)
def test_every_documented_route(case: schemathesis.Case, target: Target, quiet: None) -> None:
    _aim(case, target)
    try:
        response = case.call(base_url=target.url, timeout=60)
    except Exception:
        TALLY.add("api", case.operation.label, 599)
        raise
    TALLY.add("api", case.operation.label, response.status_code)
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.response_schema_conformance,
        ],
    )
    _error_shape(case, response)


# --- what the document cannot describe, by hypothesis (strategies: fuzz_strategies.py) ---


def _post(
    target: Target, group: str, path: str, body: bytes, headers: Any, route: str = ""
) -> httpx.Response:
    label = "POST " + (route or path)
    try:
        r = target.client.post(path, content=body, headers=headers)
    except httpx.TransportError:
        TALLY.add(group, label, 599)  # the server broke the connection: as bad as a 500
        raise
    TALLY.add(group, label, r.status_code)
    return r


def _no_server_error(r: httpx.Response, openai_errors: bool = True) -> None:
    sent = f"{r.request.method} {r.request.url.path} {dict(r.request.headers)}"
    assert r.status_code < 500, f"{r.status_code} for {sent} {r.request.content[:400]!r}"
    if r.status_code >= 400 and openai_errors:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text[:500]


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Bad input is answered, never logged as an error (a traceback in the log was a finding)."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


WEBHOOK_EVENTS = mutated(
    st.fixed_dictionaries(
        {
            "event_id": st.just(FRESH),
            "customer_id": st.sampled_from(["cust-1", "cust-2", "客户-3"]),
            "text": TEXT | st.sampled_from(["where is A-1001?", "escalate", "crash"]),
        },
        optional={"conversation_id": st.text(max_size=30)},
    )
)
TIMESTAMPS = st.one_of(
    *[st.just("now")] * 4,
    st.sampled_from(["nan", "-inf", "1e309", "", "0", "-0", "1_700_000_000", "0x10"]),
    st.floats().map(repr),
    HEADER,
)


@hypothesis.given(
    payload=st.one_of(*[WEBHOOK_EVENTS.map(encode)] * 4, BODIES),
    stamp=TIMESTAMPS,
    signing=st.sampled_from(["good", "good", "good", "wrong secret", "garbage", "missing"]),
    garbage=HEADER,
)
@fuzz_settings(default=60)
def test_webhook_bodies(
    target: Target, quiet: None, payload: bytes, stamp: str, signing: str, garbage: str
) -> None:
    stamp = str(time.time()) if stamp == "now" else stamp
    payload = fresh(payload)
    headers = {"Content-Type": "application/json", "X-Timestamp": stamp.encode("latin-1")}
    if signing != "missing":
        secret = SECRET if signing == "good" else SECRET[::-1]
        signature = sign_webhook(secret, payload, stamp) if signing != "garbage" else garbage
        headers["X-Signature"] = signature.encode("latin-1")
    r = _post(target, "webhook", "/v1/channels/webhook", payload, headers)
    _no_server_error(r)


FEISHU_MESSAGES = st.fixed_dictionaries(
    {
        "message_type": st.just("text"),
        "content": st.builds(lambda t: json.dumps({"text": t}), TEXT) | TEXT,
        "chat_id": st.sampled_from(["oc_1", "oc_2"]),
    }
)
FEISHU_MESSAGE_EVENTS = st.fixed_dictionaries(
    {
        "schema": st.just("2.0"),
        "header": st.fixed_dictionaries(
            {
                "event_id": st.just(FRESH),
                "event_type": st.just("im.message.receive_v1"),
                "token": st.just(FEISHU_TOKEN),
            }
        ),
        "event": st.fixed_dictionaries(
            {
                "sender": st.fixed_dictionaries(
                    {"sender_id": st.fixed_dictionaries({"open_id": st.text(max_size=20)})}
                ),
                "message": FEISHU_MESSAGES,
            }
        ),
    },
)
FEISHU_CHALLENGES = st.fixed_dictionaries(
    {"type": st.just("url_verification"), "token": st.just(FEISHU_TOKEN), "challenge": TEXT | JSON}
)
FEISHU_EVENTS = mutated(st.one_of(*[FEISHU_MESSAGE_EVENTS] * 3, FEISHU_CHALLENGES))


def _encrypted(plain: bytes) -> bytes:
    return json.dumps({"encrypt": feishu_encrypt(FEISHU_KEY, plain.decode())}).encode()


CIPHERTEXTS = st.one_of(
    st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()),
    HEADER,
    JSON,
)


@hypothesis.given(
    plain=st.one_of(*[FEISHU_EVENTS.map(encode)] * 4, BODIES),
    wrapping=st.sampled_from(["plain", "encrypted", "encrypted", "bad ciphertext"]),
    ciphertext=CIPHERTEXTS,
    signing=st.sampled_from(["good", "good", "good", "wrong", "missing"]),
    garbage=HEADER,
)
@fuzz_settings(default=60)
def test_feishu_events(
    target: Target,
    quiet: None,
    plain: bytes,
    wrapping: str,
    ciphertext: Any,
    signing: str,
    garbage: str,
) -> None:
    plain = fresh(plain)
    if wrapping == "encrypted":
        try:
            body = _encrypted(plain)
        except UnicodeDecodeError:
            body = plain
    elif wrapping == "bad ciphertext":
        body = encode({"encrypt": ciphertext})
    else:
        body = plain
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    if signing != "missing":
        ts, nonce = str(int(time.time())), garbage
        good = feishu_signature(ts, nonce, FEISHU_KEY, body)
        headers.update(
            {
                "X-Lark-Request-Timestamp": ts,
                "X-Lark-Request-Nonce": nonce.encode("latin-1"),
                "X-Lark-Signature": good if signing == "good" else good[::-1],
            }
        )
    r = _post(target, "feishu", "/v1/channels/feishu/events", body, headers)
    _no_server_error(r)


WIDGET_BODIES = st.one_of(
    *[mutated(st.fixed_dictionaries({"text": TEXT})).map(encode)] * 4,
    BODIES,
)


@hypothesis.given(body=WIDGET_BODIES, content_type=st.sampled_from(["application/json", None]))
@fuzz_settings(default=40)
def test_widget_messages(
    target: Target, quiet: None, body: bytes, content_type: str | None
) -> None:
    path = f"/v1/support/conversations/{target.conversation.id}/messages"
    headers = dict(target.conversation.headers)
    if content_type:
        headers["Content-Type"] = content_type
    r = _post(target, "widget", path, body, headers, STREAMS[0].replace("events", "messages"))
    _no_server_error(r)


RESUME = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "1", "abc", "1.5", "-1", "１２", "9" * 40, str(2**63), str(-(2**63) - 1)]),
    HEADER,
)


@hypothesis.given(
    last_event_id=st.none() | RESUME,
    after=st.none() | RESUME,
    console=st.booleans(),
)
@fuzz_settings(default=40)
def test_event_stream_resume(
    target: Target, quiet: None, last_event_id: str | None, after: str | None, console: bool
) -> None:
    if console:
        path, headers = "/v1/console/events", dict(target.console)
    else:
        path = f"/v1/support/conversations/{target.conversation.id}/events"
        headers = dict(target.conversation.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id.encode()  # type: ignore[assignment]
    params = {} if after is None else {"after": after}
    label = "GET " + ("/v1/console/events" if console else STREAMS[0])
    try:
        with target.client.stream("GET", path, headers=headers, params=params) as r:
            TALLY.add("event streams", label, r.status_code)
            if r.status_code == 200:
                # After ": connected", an event or a ping (within the heartbeat) arrives whole:
                # the stream did not break on its input.
                lines = (line for line in r.iter_lines() if line)
                assert next(lines) == ": connected"
                assert next(lines)
            else:
                r.read()
    except httpx.TransportError:
        TALLY.add("event streams", label, 599)
        raise
    _no_server_error(r)


MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Authorization": f"Bearer {API_KEY}",
}


@pytest.fixture(scope="module")
def mcp_session(target: Target) -> str:
    """An initialized MCP session (its id), for cases that get past the session check."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "1"},
        },
    }
    r = target.client.post("/mcp", json=init, headers=MCP_HEADERS)
    assert r.status_code == 200, r.text
    session = r.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = {**MCP_HEADERS, "Mcp-Session-Id": session}
    assert target.client.post("/mcp", json=done, headers=headers).status_code == 202
    return session


def _rpc(method: str, params: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "id": st.integers(1, 10**6), "method": st.just(method)},
        optional={"params": params},
    )


MCP_CALLS = st.one_of(
    _rpc("tools/list", st.just({})),
    _rpc(
        "tools/call",
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["helpdesk", "search_helpdesk", "nope"]),
                "arguments": st.fixed_dictionaries({"message": TEXT | st.just("A-1042?")}),
            }
        ),
    ),
    _rpc("resources/list", st.just({})),
    _rpc("resources/read", st.fixed_dictionaries({"uri": TEXT})),
    _rpc("ping", st.just({})),
    _rpc("initialize", st.fixed_dictionaries({"protocolVersion": TEXT})),
)
MCP_BODIES = st.one_of(
    *[mutated(MCP_CALLS).map(encode)] * 3,
    mutated(st.lists(MCP_CALLS, min_size=1, max_size=3)).map(encode),
    BODIES,
)


@hypothesis.given(
    body=MCP_BODIES,
    session=st.sampled_from(["real", "real", "real", "none", "garbage"]),
    method=st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"]),
    garbage=HEADER,
)
@fuzz_settings(default=30)
def test_mcp_messages(
    target: Target,
    mcp_session: str,
    quiet: None,
    body: bytes,
    session: str,
    method: str,
    garbage: str,
) -> None:
    """JSON-RPC messages, batches and garbage to /mcp, in the session or out of it. (GET and
    DELETE only out of it: the one would wait for server messages, the other end the session.)
    """
    headers: dict[str, Any] = dict(MCP_HEADERS)
    if method != "POST" and session == "real":
        session = "garbage"
    if session != "none":
        sid = mcp_session if session == "real" else garbage
        headers["Mcp-Session-Id"] = sid.encode("latin-1")
    try:
        r = target.client.request(method, "/mcp", content=body, headers=headers)
    except httpx.TransportError:
        TALLY.add("mcp", f"{method} /mcp", 599)
        raise
    TALLY.add("mcp", f"{method} /mcp", r.status_code)
    _no_server_error(r, openai_errors=r.status_code in (401, 403, 429))  # else JSON-RPC errors


C = "/v1/support/conversations/{conversation_id}"
HI = {"role": "user", "content": "where is A-1001?"}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
TAGS = {"intent": "refund", "resolution": "bot", "csat": 5}
JSON_ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    # (method, path, credentials, a valid body): each body is mutated by the test
    ("POST", "/v1/chat/completions", "api", {"model": "helpdesk", "messages": [HI]}),
    ("POST", "/v1/chat/completions", "api", {"model": "plain", "messages": [HI], "tools": [TOOL]}),
    ("POST", "/v1/chat/completions", "api", {"model": "@bot", "messages": [HI], "stream": True}),
    ("POST", "/v1/embeddings", "api", {"model": "helpdesk", "input": ["hello"]}),
    ("POST", "/v1/agents/helpdesk/runs", "api", {"input": "A-1042?", "metadata": {"k": "v"}}),
    ("POST", "/v1/agents/helpdesk/knowledge/search", "api", {"query": "refund", "k": 3}),
    ("POST", "/v1/support/conversations", "", {"channel": "web", "locale": "en"}),
    ("POST", C + "/messages", "customer", {"text": "hello"}),
    ("POST", C + "/feedback", "customer", {"message_id": 2, "rating": "up", "comment": "ok"}),
    ("POST", C + "/handoff", "customer", {"reason": "please"}),
    ("POST", "/v1/console/login", "", {"username": "bob", "password": "wrong"}),
    ("POST", "/v1/console/conversations/{conversation_id}/reply", "console", {"text": "hi"}),
    ("PATCH", "/v1/console/conversations/{conversation_id}/tags", "console", TAGS),
    ("POST", "/v1/console/curated", "console", {"question": "q", "answer": "a", "variants": ["v"]}),
    ("PUT", "/v1/console/curated/1", "console", {"question": "q", "answer": "a", "variants": []}),
    ("POST", "/v1/console/review/1/promote", "console", {"question": "q", "answer": "a"}),
]


@hypothesis.given(route=st.sampled_from(range(len(JSON_ROUTES))), data=st.data())
@fuzz_settings(default=80)
def test_json_bodies(target: Target, quiet: None, route: int, data: Any) -> None:
    """Every JSON route with its valid body, odd in places: lone surrogates (which pydantic lets
    through in plain `str` fields), other types, huge and deep values."""
    method, path, who, valid = JSON_ROUTES[route]
    valid = json.loads(json.dumps(valid).replace("@bot", target.bot.agent.name))
    body = data.draw(mutated(st.just(valid).map(copy.deepcopy)))
    headers = {
        "api": target.api,
        "customer": target.conversation.headers,
        "console": target.console,
        "": {},
    }[who]
    path = path.replace("{conversation_id}", target.conversation.id)
    content = json.dumps(body).encode()
    try:
        r = target.client.request(
            method,
            path,
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
    except httpx.TransportError:
        TALLY.add("json bodies", f"{method} {JSON_ROUTES[route][1]}", 599)
        raise
    TALLY.add("json bodies", f"{method} {JSON_ROUTES[route][1]}", r.status_code)
    _no_server_error(r)
