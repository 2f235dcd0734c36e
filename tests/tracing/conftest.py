"""Tracing fixtures: an SDK tracer provider with an in-memory exporter, installed for one test.

The OpenTelemetry API lets a process set its global provider once; between tests the globals are
put back the way `opentelemetry-test-utils` (`reset_trace_globals`) does it, so that the rest of
the suite runs with tracing off, as a user without a provider does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from glm_agent import tracing


def reset_trace_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span finished during the test, in order of ending."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reset_trace_globals()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        reset_trace_globals()
        tracing.set_capture_content(False)


@pytest.fixture
def capture() -> Iterator[None]:
    """Content capture on for the test."""
    tracing.set_capture_content(True)
    try:
        yield
    finally:
        tracing.set_capture_content(False)
