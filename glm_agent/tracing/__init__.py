"""OpenTelemetry spans where the work is, at no cost when no tracer provider is set.

Every layer opens its spans through this module: the agent run (`invoke_agent`), each model
request (`chat`, GenAI semantic conventions), each tool call (`execute_tool`), retrieval, memory
load / append, the support bot's handoffs and curated answers, and the HTTP request that started
it all. Without a provider (no `opentelemetry-sdk` configured, by glm-agent or by the
application) nothing is created and `opentelemetry` is not even imported: `enabled()` is one
dictionary look-up.

```python
from glm_agent import tracing

tracing.configure_tracing(tracing.TracingConfig(endpoint="http://127.0.0.1:4318/v1/traces"))
with tracing.span("my work", {"order.id": "A-1042"}) as s:
    ...
```

Message contents (prompts, answers, tool arguments and results, retrieval queries) are recorded
only when content capture is on (`TracingConfig.capture_content`, or the standard
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`), and always through the redactor the
run installs (the agent memory's: the support bot masks personal data with it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Mapping,
    MutableMapping,
)
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from glm_agent.tracing._config import TracingConfig, configure_tracing

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer

__all__ = [
    "SpanLike",
    "TracingConfig",
    "capture_content",
    "capturing",
    "configure_tracing",
    "content_json",
    "context_with",
    "current_span",
    "enabled",
    "extract",
    "fail",
    "inject",
    "iterate_in",
    "mark",
    "redact_text",
    "set_capture_content",
    "set_error",
    "span",
    "start_span",
]

T = TypeVar("T")
Kind = Literal["internal", "client", "server"]
AttributeValue = str | bool | int | float | list[str] | list[int] | list[float]
Attributes = Mapping[str, Any]
"""Span attributes: str, bool, int, float or lists of one of them; None values are left out."""
TRACER_NAME = "glm_agent"
_REDACT_KEY = "glm_agent.redact"


class SpanLike(Protocol):
    """The part of an OpenTelemetry `Span` glm-agent uses (a real span, or the no-op one)."""

    def is_recording(self) -> bool:
        """Whether the span records what is set on it."""
        ...

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute."""
        ...

    def add_event(self, name: str, attributes: Any = None) -> None:
        """Add a timestamped event."""
        ...

    def update_name(self, name: str) -> None:
        """Rename the span (once its route or target is known)."""
        ...

    def end(self) -> None:
        """End the span."""
        ...


class _NoSpan:
    """What `span()` yields when tracing is off: every method does nothing."""

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def add_event(self, name: str, attributes: Any = None) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None

    def end(self) -> None:
        return None


NO_SPAN = _NoSpan()
_tracer: tuple[object, Tracer] | None = None
_capture: bool = False


def enabled() -> bool:
    """Whether spans are recorded: an OpenTelemetry SDK tracer provider is installed.

    `opentelemetry.trace` is not imported by `import glm_agent`; a provider can only have been
    set by code that imported it, so while it is absent from `sys.modules` tracing is off.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _get_tracer() -> Tracer:
    global _tracer
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        from glm_agent import __version__

        _tracer = (provider, provider.get_tracer(TRACER_NAME, __version__))
    return _tracer[1]


def _kind(kind: Kind) -> Any:
    from opentelemetry.trace import SpanKind

    return {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}[
        kind
    ]


def _clean(attributes: Attributes | None) -> dict[str, AttributeValue]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


class _NoSpanBlock:
    """The context manager `span()` returns when tracing is off."""

    def __enter__(self) -> SpanLike:
        return NO_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN_BLOCK = _NoSpanBlock()


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    kind: Kind = "internal",
    context: Context | None = None,
) -> AbstractContextManager[SpanLike]:
    """A span around a block, current while the block runs (a no-op one when tracing is off).

    An exception leaving the block is recorded on the span, which is marked as an error. Never
    keep it open across a `yield` of an async generator: use `start_span` and `iterate_in`.

    Args:
        name: The span's name (`chat glm-4.5`, `execute_tool lookup_order`...).
        attributes: Attributes at the start (None values are left out).
        kind: `internal`, `client` (a request to another service) or `server`.
        context: The parent context (default: the current one).
    """
    if not enabled():
        return _NO_SPAN_BLOCK
    block: AbstractContextManager[SpanLike] = _get_tracer().start_as_current_span(
        name, context=context, kind=_kind(kind), attributes=_clean(attributes)
    )
    return block


def start_span(name: str, attributes: Attributes | None = None, *, kind: Kind = "internal") -> Any:
    """A span started under the current one but not made current; the caller ends it.

    For work that yields (async generators): pair it with `context_with` and `iterate_in`.
    Only call it when `enabled()`.
    """
    return _get_tracer().start_span(name, kind=_kind(kind), attributes=_clean(attributes))


def context_with(span: Any, redact: Callable[[str], str] | None = None) -> Context:
    """The current context with `span` as the current span (and `redact` as the text redactor
    that content captured under it goes through)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    ctx = trace.set_span_in_context(span)
    if redact is not None:
        ctx = otel_context.set_value(_REDACT_KEY, redact, ctx)
    return ctx


async def iterate_in(context: Context, items: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Iterate `items` with `context` current while each item is produced, not in between.

    A context attached across a `yield` would leak into the consumer's code and be detached in
    another task when the consumer steps the iterator from several (the sync bridge does); here
    each attach and detach happen inside one step.
    """
    from opentelemetry import context as otel_context

    try:
        while True:
            token = otel_context.attach(context)
            try:
                item = await anext(items)
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


def fail(span: Any, error: BaseException) -> None:
    """Record `error` on a span started with `start_span` and mark the span as failed."""
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))


def set_error(span: Any, error_type: str, description: str) -> None:
    """Mark a span as failed for a reason that was not raised (a tool failure told to the model,
    an HTTP 5xx answer)."""
    if span.is_recording():
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, description[:500]))


def current_span() -> SpanLike:
    """The current span (the no-op one when tracing is off)."""
    if not enabled():
        return NO_SPAN
    from opentelemetry import trace

    span: SpanLike = trace.get_current_span()
    return span


def mark(name: str, **fields: AttributeValue | None) -> None:
    """A zero-length span under the current one, for an event worth finding by name (a handoff,
    a curated answer); `fields` become attributes `glm_agent.<name>.<field>`. Does nothing when
    tracing is off.

    ```python
    tracing.mark("handoff", trigger="customer_request", ticket=12)
    ```
    """
    if enabled():
        attributes = _clean({f"glm_agent.{name}.{k}": v for k, v in fields.items()})
        _get_tracer().start_span(name, attributes=attributes).end()


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (`traceparent`, `tracestate`) to outgoing HTTP headers."""
    if enabled():
        from opentelemetry import propagate

        propagate.inject(headers)


def extract(headers: Mapping[str, str]) -> Context:
    """The trace context an incoming request carries (`traceparent`), to continue it."""
    from opentelemetry import propagate

    return propagate.extract(headers)


# --- content capture ------------------------------------------------------------------------------


def set_capture_content(on: bool) -> None:
    """Record message contents (prompts, answers, tool arguments and results, queries) on spans."""
    global _capture
    _capture = on


def capture_content() -> bool:
    """Whether message contents are recorded (see `set_capture_content`)."""
    return _capture


def capturing() -> bool:
    """Whether contents are recorded right now: capture is on and tracing is enabled."""
    return _capture and enabled()


def redact_text(text: str) -> str:
    """`text` through the redactor of the current run (unchanged when there is none)."""
    from opentelemetry import context as otel_context

    redact = otel_context.get_value(_REDACT_KEY)
    return redact(text) if callable(redact) else text


def content_json(value: Any) -> str:
    """A value as the JSON text recorded on a span, through the current run's redactor."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return redact_text(text)
