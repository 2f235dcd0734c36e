"""HTTP tools: one request per call on a pooled `httpx.AsyncClient` shared by a registry."""

from __future__ import annotations

import asyncio
import base64
import json
import string
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from glm_agent import tracing
from glm_agent._scrub import scrub
from glm_agent.exceptions import MissingDependencyError, ModelRetry
from glm_agent.tools._yaml_schema import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HttpBinding,
    HttpSettings,
    ResponseSelector,
)

__all__ = ["HttpClientPool", "HttpEndpoint", "check_binding", "json_pointer", "url_fields"]

_SHORT_BODY = 500
_QUERY_METHODS = {"GET", "DELETE", "HEAD"}


def url_fields(url: str) -> list[str]:
    """Names of the `{placeholders}` of a URL template."""
    return [f for _, f, _, _ in string.Formatter().parse(url) if f]


def json_pointer(doc: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON pointer; raises `KeyError` naming the missing part."""
    if pointer == "":
        return doc
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list):
            if not part.isdigit() or int(part) >= len(doc):
                raise KeyError(f"no item {part!r} in a list of {len(doc)}")
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            if part not in doc:
                raise KeyError(f"no key {part!r}; keys: {', '.join(map(str, doc)) or '(none)'}")
            doc = doc[part]
        else:
            raise KeyError(f"cannot look up {part!r} in a {type(doc).__name__}")
    return doc


def _select(data: Any, selector: ResponseSelector) -> Any:
    if selector.pointer is not None:
        try:
            return json_pointer(data, selector.pointer)
        except KeyError as e:
            raise ModelRetry(f"the response has no {selector.pointer}: {e.args[0]}") from None
    try:
        import jmespath
    except ImportError:  # pragma: no cover - jmespath is a dev dependency
        raise MissingDependencyError("jmespath", "tools", "JMESPath response selectors") from None
    return jmespath.search(selector.jmespath, data)


class HttpClientPool:
    """The HTTP client of one registry: a connection pool, a host allow-list, a size limit.

    The `httpx.AsyncClient` is created on first use in the running event loop (and again if a
    later call runs in another loop, since pooled connections belong to the loop that opened them).

    Args:
        settings: Allow-list, response size limit and pool size.
        transport: An httpx transport to use instead of the network (e.g. `httpx.ASGITransport`).
    """

    def __init__(
        self, settings: HttpSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.allowed_hosts = {h.lower() for h in settings.allowed_hosts or []}
        self.transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def allow(self, host: str) -> None:
        """Add a host to the allow-list."""
        self.allowed_hosts.add(host.lower())

    def check_url(self, url: str) -> None:
        """Raise `ModelRetry` for a URL whose host is not on the allow-list."""
        host = (urlsplit(url).hostname or "").lower()
        if host not in self.allowed_hosts:
            allowed = ", ".join(sorted(self.allowed_hosts)) or "(none)"
            raise ModelRetry(f"host {host!r} is not allowed; allowed hosts: {allowed}")

    @property
    def is_open(self) -> bool:
        """Whether a client (and maybe pooled connections) is open."""
        return self._client is not None and not self._client.is_closed

    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            limits = httpx.Limits(max_connections=self.settings.max_connections)
            self._client = httpx.AsyncClient(
                transport=self.transport, limits=limits, follow_redirects=False
            )
            self._loop = loop
        return self._client

    async def release(self) -> None:
        """Close the client if it belongs to the running loop (call before a short-lived loop,
        like one made by `asyncio.run`, ends)."""
        if self._loop is asyncio.get_running_loop():
            await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class HttpEndpoint:
    """The implementation of one HTTP tool: builds the request from the arguments and sends it.

    HTTP errors, timeouts and oversized responses raise `ModelRetry` with a short text
    (status code and the start of the body), which the agent writes back to the model.

    Args:
        name: The tool's name, for messages.
        binding: The request (secrets already substituted).
        pool: The registry's client.
        idempotent: Whether timeouts and 5xx answers may be retried.
    """

    def __init__(
        self, name: str, binding: HttpBinding, pool: HttpClientPool, *, idempotent: bool
    ) -> None:
        self.name = name
        self.binding = binding
        self.pool = pool
        self.idempotent = idempotent
        self.path_args = url_fields(binding.url)

    def _mapping(self, spec: list[str] | dict[str, str] | None, rest: list[str]) -> dict[str, str]:
        if spec is None:
            return {a: a for a in rest}
        return {a: a for a in spec} if isinstance(spec, list) else dict(spec)

    def build(self, args: dict[str, Any]) -> httpx.Request:
        """The request for these (validated) arguments."""
        b = self.binding
        missing = [a for a in self.path_args if args.get(a) is None]
        if missing:
            raise ModelRetry(f"missing required argument(s) for the URL: {', '.join(missing)}")
        for a in self.path_args:
            # Every character is percent-encoded, but `.` and `..` are path segments of their
            # own: the URL would be normalised to another endpoint (with this tool's token).
            if str(args[a]).strip() in ("", ".", ".."):
                raise ModelRetry(
                    f"argument {a!r} cannot be {str(args[a])!r} (it is part of the URL)"
                )
        url = b.url.format(**{a: quote(str(args[a]), safe="") for a in self.path_args})
        rest = [a for a in args if a not in self.path_args]
        query_map = self._mapping(b.query, rest if b.method in _QUERY_METHODS else [])
        rest = [a for a in rest if a not in query_map.values()]
        body_map = self._mapping(b.body, rest if b.method not in _QUERY_METHODS else [])
        params: dict[str, Any] = {}
        for param, arg in query_map.items():
            if args.get(arg) is not None:
                value = args[arg]
                if isinstance(value, bool):
                    value = "true" if value else "false"
                elif isinstance(value, dict):
                    value = json.dumps(value, ensure_ascii=False)
                params[param] = value
        headers = dict(b.headers)
        auth = b.auth
        if isinstance(auth, BearerAuth):
            headers["Authorization"] = f"Bearer {auth.token}"
        elif isinstance(auth, BasicAuth):
            pair = f"{auth.username}:{auth.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif isinstance(auth, ApiKeyAuth):
            if auth.location == "header":
                headers[auth.name] = auth.value
            else:
                params[auth.name] = auth.value
        body = {field: args[arg] for field, arg in body_map.items() if arg in args}
        self.pool.check_url(url)
        tracing.inject(headers)  # the tool call's span continues in the service it calls
        return self.pool.client().build_request(
            b.method,
            url,
            params=params,
            headers=headers,
            json=body if body_map else None,
            timeout=b.timeout,
        )

    async def _send(self, request: httpx.Request) -> tuple[int, bytes, str]:
        limit = self.pool.settings.max_response_bytes
        response = await self.pool.client().send(request, stream=True)
        try:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ModelRetry(f"the response is {declared} bytes, over the {limit}-byte limit")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ModelRetry(f"the response is over the {limit}-byte limit")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response.status_code, b"".join(chunks), response.headers.get("content-type", "")

    def _secrets(self) -> list[str]:
        auth = self.binding.auth
        values = list(self.binding.headers.values())
        if isinstance(auth, BearerAuth):
            values.append(auth.token)
        elif isinstance(auth, BasicAuth):
            values.append(auth.password)
        elif isinstance(auth, ApiKeyAuth):
            values.append(auth.value)
        return values

    async def __call__(self, **args: Any) -> Any:
        """Send the request; the (selected) JSON response, or its text when not JSON.

        What goes wrong is told to the model with the tool's secrets scrubbed out (URL user
        info, its token or API key, credential-looking parameters).
        """
        try:
            return await self._call(args)
        except ModelRetry as e:
            raise ModelRetry(scrub(e.message, self._secrets())) from None

    async def _call(self, args: dict[str, Any]) -> Any:
        request = self.build(args)
        where = f"{request.method} {request.url.copy_with(query=None)}"
        attempts = 1 + (self.binding.retries if self.idempotent else 0)
        for attempt in range(attempts):
            last = attempt + 1 == attempts
            try:
                status, body, content_type = await self._send(request)
            except httpx.TimeoutException:
                if not last:
                    await asyncio.sleep(self.binding.backoff * 2**attempt)
                    continue
                raise ModelRetry(
                    f"{where} timed out after {self.binding.timeout:g}s"
                    + (f" ({attempts} attempts)" if attempts > 1 else "")
                ) from None
            except httpx.TransportError as e:
                raise ModelRetry(f"{where} failed: {type(e).__name__}: {e}") from None
            if status >= 500 and not last:
                await asyncio.sleep(self.binding.backoff * 2**attempt)
                continue
            break
        text = body.decode("utf-8", errors="replace")
        if status >= 400:
            short = text if len(text) <= _SHORT_BODY else text[:_SHORT_BODY] + "..."
            raise ModelRetry(f"{where} answered HTTP {status}: {short}")
        if not body:
            return {"status": status}
        try:
            data = json.loads(text)
        except ValueError:
            if "json" in content_type:
                raise ModelRetry(f"{where} returned invalid JSON: {text[:_SHORT_BODY]}") from None
            return text
        return _select(data, self.binding.response) if self.binding.response else data


def check_binding(binding: HttpBinding, properties: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems of a binding against its parameter names, as (key, message) pairs."""
    problems: list[tuple[str, str]] = []
    names = ", ".join(properties) or "(none)"
    for arg in url_fields(binding.url):
        if arg not in properties:
            problems.append(
                ("url", f"URL placeholder {{{arg}}} is not a parameter; parameters: {names}")
            )
    for key in ("query", "body"):
        spec = getattr(binding, key)
        args = spec if isinstance(spec, list) else list((spec or {}).values())
        for arg in args:
            if arg not in properties:
                problems.append(
                    (key, f"{key} argument {arg!r} is not a parameter; parameters: {names}")
                )
    # With an explicit mapping, a parameter left out of URL, query and body would be accepted
    # from the model and then silently dropped.
    sent = set(url_fields(binding.url))
    for key in ("query", "body"):
        spec = getattr(binding, key)
        if spec is None and (key == "query") == (binding.method in _QUERY_METHODS):
            sent |= set(properties)  # the default mapping sends whatever is left
        elif spec is not None:
            sent |= set(spec if isinstance(spec, list) else spec.values())
    if unsent := [p for p in properties if p not in sent]:
        where = "query" if binding.method in _QUERY_METHODS else "body"
        problems.append(
            (where, f"parameter(s) {', '.join(unsent)} are never sent: add them to {where}")
        )
    scheme = urlsplit(binding.url).scheme
    if scheme not in ("http", "https"):
        problems.append(
            ("url", f"the URL must start with http:// or https://, got {binding.url!r}")
        )
    return problems
