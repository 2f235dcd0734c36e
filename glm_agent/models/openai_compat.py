"""`OpenAICompatibleModel`: GLM served by vLLM, SGLang or Zhipu's API, over OpenAI's HTTP protocol.

Two modes:

- `chat`: `/chat/completions` with `tools`; the server renders the prompt and parses GLM tool
  calls itself (vLLM / SGLang with `--tool-call-parser glm45` or `glm47`, Zhipu's API). Its
  parsed calls are checked, and repaired where its parser failed, per `server_tool_calls`
  (`trust` / `repair` / `own`; see `_tool_repair`).
- `completions`: `/completions` with a prompt glm-agent renders, and glm-agent's own GLM
  tool-call parsing of the raw text: for servers that have no tool parser for the model
  (glm-4-9b-chat and GLM-4-0414 on vLLM).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from pydantic import SecretStr

from glm_agent import tracing
from glm_agent.exceptions import ModelError, UserError
from glm_agent.messages import MediaPart, Message, ModelResponse, ModelStreamEvent, ToolDefinition
from glm_agent.models import _openai_wire as wire
from glm_agent.models._media import family_media_tokens, media_of, refuse_media_in_prompt
from glm_agent.models._retry import RetryPolicy
from glm_agent.models._sse import aiter_sse, iter_sse
from glm_agent.models._tool_repair import SERVER_TOOL_CALLS, CallRepair, ServerToolCalls, retried
from glm_agent.models.base import ChatModel
from glm_agent.settings import ModelSettings

if TYPE_CHECKING:
    from glm_agent.glm import GLMFormat

__all__ = ["DEFAULT_BASE_URLS", "Mode", "OpenAICompatibleModel", "Provider", "ServerToolCalls"]

Provider = wire.Provider
Mode = Literal["chat", "completions"]

#: Where each provider listens unless told otherwise.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "sglang": "http://127.0.0.1:30000/v1",
    "zhipu": "https://open.bigmodel.cn/api/paas/v4",
}
#: The environment variable each provider's API key is read from.
API_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "vllm": "VLLM_API_KEY",
    "sglang": "SGLANG_API_KEY",
    "zhipu": "ZHIPUAI_API_KEY",
}


class _StreamState(Protocol):
    def feed(self, chunk: dict[str, Any]) -> list[ModelStreamEvent]: ...
    def finish(self) -> list[ModelStreamEvent]: ...
    @property
    def raw_finish(self) -> str | None: ...
    @property
    def retry_one_shot(self) -> bool: ...
    @property
    def next_index(self) -> int: ...


class _Truncated(Exception):
    """The body ended before `[DONE]` and before any finish reason: a cut connection."""


@dataclass(frozen=True)
class _Call:
    path: str
    body: dict[str, Any]
    timeout: httpx.Timeout
    parse: Callable[[dict[str, Any]], ModelResponse]
    new_state: Callable[[], _StreamState]

    def one_shot(self) -> _Call:
        """The same request without streaming (asked when a server's streaming parser failed)."""
        body = {k: v for k, v in self.body.items() if k != "stream_options"}
        return _Call(self.path, {**body, "stream": False}, self.timeout, self.parse, self.new_state)


class OpenAICompatibleModel(ChatModel):
    """A GLM model behind an OpenAI-compatible HTTP server.

    Args:
        model: The model name the server knows (`--served-model-name`, `glm-4.5`...).
        base_url: The API root, ending in `/v1` (`/api/paas/v4` for Zhipu); defaults per provider.
        provider: `openai`, `vllm`, `sglang` or `zhipu`: decides how thinking and sampling
            extras are sent (`chat_template_kwargs` vs Zhipu's `thinking`).
        mode: `chat` (server-side tool parsing) or `completions` (glm-agent renders and parses).
        family: GLM format for `completions` mode (`glm4`, `glm45`, `glm47`, `chatglm3`...);
            defaults to the one `model`'s name implies.
        server_tool_calls: Chat mode: what to do with the tool calls the server parsed.
            `trust` takes them as they are; `repair` checks them against the tool schemas,
            decodes string-typed numbers and double-encoded arrays / objects, reads
            `<tool_call>` markup left in the content with glm-agent's codec and asks once more
            without streaming when the server's streaming parser lost a call; `own` also reads
            every call again with glm-agent's codec. Default: `repair` for `vllm` / `sglang`,
            `trust` for `openai` / `zhipu`. No effect in `completions` mode (glm-agent parses).
        api_key: The key; by default read from the provider's variable (`OPENAI_API_KEY`,
            `VLLM_API_KEY`, `SGLANG_API_KEY`, `ZHIPUAI_API_KEY`). Never shown by `repr`.
        api_key_env: Read the key from this variable instead.
        settings: Default settings, overridden per request.
        timeout: Seconds to wait for the model's answer (or between two streamed chunks).
        connect_timeout: Seconds to wait for a connection.
        max_retries: Retries on connection errors, 408/409/429 and 5xx (with `Retry-After`).
        backoff: Base of the exponential backoff, in seconds.
        max_backoff: Cap on one backoff wait.
        headers: Extra HTTP headers for every request.
        name: Name shown in transcripts (default: `model`).
        media: What the model reads besides text (`("image", "video")`, `()`); default: what
            its name says (GLM-4.1V / 4.5V / 4.6V, GLM-5.3-Flash, glm-4v read images; other GLM
            names text only; names glm-agent does not know: left to the server). Images are
            sent in chat mode only: a prompt rendered for `completions` cannot carry them.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        provider: Provider = "openai",
        mode: Mode = "chat",
        family: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        settings: ModelSettings | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        server_tool_calls: ServerToolCalls | None = None,
        media: tuple[str, ...] | Literal["auto"] | None = "auto",
    ) -> None:
        if provider not in wire.PROVIDERS:
            raise UserError(
                f"unknown provider {provider!r}; providers: {', '.join(wire.PROVIDERS)}"
            )
        if mode not in ("chat", "completions"):
            raise UserError(f"unknown mode {mode!r}; modes: chat, completions")
        if mode == "completions" and provider == "zhipu":
            raise UserError("Zhipu's API has no /completions endpoint; use mode='chat'")
        if server_tool_calls is not None and server_tool_calls not in SERVER_TOOL_CALLS:
            raise UserError(
                f"unknown server_tool_calls {server_tool_calls!r}; "
                f"choices: {', '.join(SERVER_TOOL_CALLS)}"
            )
        self.server_tool_calls: ServerToolCalls = server_tool_calls or (
            "repair" if provider in ("vllm", "sglang") else "trust"
        )
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URLS[provider]).rstrip("/")
        self.provider: Provider = provider
        self.mode: Mode = mode
        self.settings = settings or ModelSettings()
        self.name = name or model
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        env = api_key_env or API_KEY_ENV[provider]
        key = api_key if api_key is not None else os.environ.get(env)
        self._api_key = SecretStr(key) if key else None
        self._headers = {"user-agent": "glm-agent", **(headers or {})}
        self.family: str | None = None
        self._format: GLMFormat | None = None
        if mode == "completions":
            from glm_agent.glm import family_for_model, get_format

            self.family = family or family_for_model(model)
            self._format = get_format(self.family)
        self.media = media_of(family or model) if media == "auto" else media
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._aclient_keeper: AsyncGenerator[None, None] | None = None

    def count_media_tokens(self, part: MediaPart) -> int:
        """An image's tokens by its GLM family's processor rule (see `glm.image_tokens`),
        else by the generic estimate."""
        return family_media_tokens(self.family or self.model, part)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}, "
            f"provider={self.provider!r}, mode={self.mode!r}, "
            f"server_tool_calls={self.server_tool_calls!r})"
        )

    __str__ = __repr__

    # --- building one call ---------------------------------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self._api_key is not None:
            headers["authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        tracing.inject(headers)  # the request's `chat` span continues on the model server
        return headers

    def _prepare(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition],
        settings: ModelSettings | None,
        *,
        stream: bool,
    ) -> _Call:
        s = self.settings.merged(settings)
        timeout = httpx.Timeout(s.timeout or self.timeout, connect=self.connect_timeout)
        if self._format is None:
            body = wire.chat_body(self.model, messages, tools, s, self.provider, stream=stream)
            policy = self.server_tool_calls
            repair = CallRepair(tools, policy) if tools and policy != "trust" else None
            return _Call(
                "chat/completions",
                body,
                timeout,
                parse=lambda data: wire.parse_chat(data, self.model, repair),
                new_state=lambda: wire.ChatStreamState(self.model, repair),
            )
        fmt = self._format
        refuse_media_in_prompt(messages)
        # Completions mode cannot force a call; `none` hides the tools, the rest act as `auto`.
        offered = [] if s.tool_choice == "none" else list(tools)
        think = s.enable_thinking
        # The template switches a chat server reads from `chat_template_kwargs` (preserved
        # thinking, GLM-5.x reasoning effort) are applied here, where glm-agent renders.
        kw = s.extra.get("chat_template_kwargs") or {}
        prompt = fmt.render(
            messages,
            offered,
            add_generation_prompt=True,
            enable_thinking=think,
            clear_thinking=kw.get("clear_thinking"),
            reasoning_effort=kw.get("reasoning_effort"),
        )
        body = wire.completion_body(self.model, prompt, s, self.provider, fmt.facts, stream=stream)
        return _Call(
            "completions",
            body,
            timeout,
            parse=lambda data: wire.parse_completion(data, self.model, fmt, offered, think),
            new_state=lambda: wire.CompletionStreamState(
                self.model, fmt.stream_parser(offered, enable_thinking=think)
            ),
        )

    def _url(self, call: _Call) -> str:
        return f"{self.base_url}/{call.path}"

    # --- async ----------------------------------------------------------------------------------

    async def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        # An httpx pool belongs to the loop that opened its connections: one pool per loop.
        if self._aclient is None or self._aclient_loop is not loop:
            client = httpx.AsyncClient(base_url=self.base_url + "/")
            keeper = _close_with_loop(client)
            # A started async generator is finalised by the loop's shutdown_asyncgens()
            # (asyncio.run does that), which closes the pool before its loop goes away.
            await keeper.__anext__()
            self._aclient, self._aclient_loop, self._aclient_keeper = client, loop, keeper
        return self._aclient

    async def request(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Run one turn (see `ChatModel.request`)."""
        return await self._send(self._prepare(messages, tools, settings, stream=False))

    async def _send(self, call: _Call) -> ModelResponse:
        client = await self._async_client()
        attempt = 0
        while True:
            try:
                resp = await client.post(
                    call.path,
                    json=call.body,
                    headers=self._request_headers(),
                    timeout=call.timeout,
                )
            except httpx.TransportError as e:
                delay = self.retry.after_error(attempt, e, self._url(call))
            else:
                if resp.status_code < 400:
                    return call.parse(wire.decode_json(resp.text, f"response of {self._url(call)}"))
                delay = self.retry.after_status(attempt, resp, self.model)
            await asyncio.sleep(delay)
            attempt += 1

    async def request_stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[ModelStreamEvent]:
        """Stream one turn over server-sent events; the last event is `ResponseDone`."""
        call = self._prepare(messages, tools, settings, stream=True)
        client = await self._async_client()
        attempt = 0
        while True:
            yielded = False
            try:
                async with client.stream(
                    "POST",
                    call.path,
                    json=call.body,
                    headers=self._request_headers(),
                    timeout=call.timeout,
                ) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        delay = self.retry.after_status(attempt, resp, self.model)
                    else:
                        state, done = call.new_state(), False
                        async with contextlib.aclosing(aiter_sse(resp)) as sse_events:
                            async for sse in sse_events:
                                if done or sse.data.strip() == _DONE:
                                    # Read on to the end of the body so httpx's readers finish.
                                    done = True
                                    continue
                                for event in _feed(state, sse.data, self._url(call)):
                                    yielded = True
                                    yield event
                        closing = _close(state, done, self._url(call))
                        if state.retry_one_shot:  # the server's streaming parser lost calls
                            again = await self._send(call.one_shot())
                            closing = retried(closing, again, state.next_index)
                        for event in closing:
                            yield event
                        return
            except (httpx.TransportError, _Truncated) as e:
                delay = self._after_stream_error(attempt, e, yielded, call)
            await asyncio.sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        """Close the HTTP connection pools."""
        keeper, self._aclient_keeper = self._aclient_keeper, None
        same_loop = self._aclient_loop is asyncio.get_running_loop()
        self._aclient = self._aclient_loop = None
        if keeper is not None and same_loop:
            await keeper.aclose()
        self.close()

    # --- sync -----------------------------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url + "/")
        return self._client

    def request_sync(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """Blocking form of `request`, on a sync HTTP client (no event loop involved)."""
        return self._send_sync(self._prepare(messages, tools, settings, stream=False))

    def _send_sync(self, call: _Call) -> ModelResponse:
        client = self._sync_client()
        attempt = 0
        while True:
            try:
                resp = client.post(
                    call.path,
                    json=call.body,
                    headers=self._request_headers(),
                    timeout=call.timeout,
                )
            except httpx.TransportError as e:
                delay = self.retry.after_error(attempt, e, self._url(call))
            else:
                if resp.status_code < 400:
                    return call.parse(wire.decode_json(resp.text, f"response of {self._url(call)}"))
                delay = self.retry.after_status(attempt, resp, self.model)
            time.sleep(delay)
            attempt += 1

    def stream_sync(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings | None = None,
    ) -> Iterator[ModelStreamEvent]:
        """Blocking form of `request_stream`, on a sync HTTP client."""
        call = self._prepare(messages, tools, settings, stream=True)
        client = self._sync_client()
        attempt = 0
        while True:
            yielded = False
            try:
                with client.stream(
                    "POST",
                    call.path,
                    json=call.body,
                    headers=self._request_headers(),
                    timeout=call.timeout,
                ) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        delay = self.retry.after_status(attempt, resp, self.model)
                    else:
                        state, done = call.new_state(), False
                        for sse in iter_sse(resp):
                            if done or sse.data.strip() == _DONE:
                                done = True
                                continue
                            for event in _feed(state, sse.data, self._url(call)):
                                yielded = True
                                yield event
                        closing = _close(state, done, self._url(call))
                        if state.retry_one_shot:  # the server's streaming parser lost calls
                            again = self._send_sync(call.one_shot())
                            closing = retried(closing, again, state.next_index)
                        yield from closing
                        return
            except (httpx.TransportError, _Truncated) as e:
                delay = self._after_stream_error(attempt, e, yielded, call)
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        """Close the sync HTTP connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _after_stream_error(
        self, attempt: int, error: Exception, yielded: bool, call: _Call
    ) -> float:
        url = self._url(call)
        if yielded:
            # Deltas already reached the caller: a retry would repeat them.
            raise ModelError(
                f"connection to {url} dropped mid-stream after partial output "
                f"({type(error).__name__}: {error}); not retried"
            ) from error
        if not isinstance(error, httpx.TransportError):
            error = httpx.RemoteProtocolError(str(error))
        return self.retry.after_error(attempt, error, url)


async def _close_with_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


# --- stream helpers shared by both paths --------------------------------------------------------

_DONE = "[DONE]"


def _feed(state: _StreamState, data: str, url: str) -> list[ModelStreamEvent]:
    return state.feed(wire.decode_json(data, f"stream chunk from {url}"))


def _close(state: _StreamState, done: bool, url: str) -> list[ModelStreamEvent]:
    if not done and state.raw_finish is None:
        raise _Truncated(f"stream from {url} ended before [DONE] and before a finish reason")
    return state.finish()
