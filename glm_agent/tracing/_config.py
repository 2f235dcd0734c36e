"""`TracingConfig` (the `tracing:` section of an agent.yaml) and `configure_tracing`.

The standard `OTEL_*` variables work as everywhere: `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and `..._HEADERS`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` / `_ARG`, `OTEL_TRACES_EXPORTER`
(`otlp`, `console`, `none`), `OTEL_SDK_DISABLED` and
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`. Settings in the YAML win over them.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glm_agent.exceptions import MissingDependencyError

__all__ = ["TracingConfig", "configure_tracing", "tracing_wanted"]

_TRUE = ("1", "true", "yes", "on")


class TracingConfig(BaseModel):
    """Where spans go. Langfuse, Logfire, Jaeger and any OpenTelemetry collector read OTLP."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Install a tracer provider (unless the application already installed one)."""
    exporter: Literal["otlp", "console"] = "otlp"
    """`otlp`: OTLP over HTTP (protobuf) to `endpoint`; `console`: print spans (debugging)."""
    endpoint: str | None = None
    """The OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces` (default:
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`,
    else localhost:4318)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """HTTP headers for the exporter (an `Authorization` for Langfuse or Logfire; use
    `${VAR}` for secrets), added to `OTEL_EXPORTER_OTLP_HEADERS`."""
    service_name: str | None = None
    """`service.name` of the spans (default: `OTEL_SERVICE_NAME`, else the agent's name)."""
    sample_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of new traces recorded (parent-based; default: `OTEL_TRACES_SAMPLER`, else all)."""
    capture_content: bool | None = None
    """Record prompts, answers, tool arguments / results and queries, redacted (default:
    `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, else off)."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def tracing_wanted() -> bool:
    """Whether the `OTEL_*` environment asks for traces (an exporter or an OTLP endpoint)."""
    if _env_flag("OTEL_SDK_DISABLED"):
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _exporter(config: TracingConfig) -> Any:
    exporter = config.exporter
    env_exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not config.model_fields_set & {"exporter"} and env_exporter == "console":
        exporter = "console"
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise MissingDependencyError(
            "opentelemetry-exporter-otlp-proto-http", "otel", "exporting traces over OTLP"
        ) from None
    from opentelemetry.util.re import parse_env_headers

    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or os.environ.get(
        "OTEL_EXPORTER_OTLP_HEADERS", ""
    )
    headers = {**parse_env_headers(raw, liberal=True), **config.headers}
    return OTLPSpanExporter(endpoint=config.endpoint, headers=headers or None)


def configure_tracing(
    config: TracingConfig | None = None, *, service_name: str | None = None
) -> bool:
    """Install an OpenTelemetry SDK tracer provider that exports glm-agent's spans.

    Does nothing when one is installed already (by the application, Logfire, an auto-
    instrumentation agent, or an earlier call): spans then go wherever that one sends them.
    The content-capture switch is applied either way.

    Args:
        config: The settings (default: `TracingConfig()`, read with the `OTEL_*` variables).
        service_name: `service.name` when neither the config nor `OTEL_SERVICE_NAME` gives one.

    Returns:
        Whether this call installed the provider.

    Raises:
        MissingDependencyError: the SDK is not installed (the `otel` extra).
    """
    from glm_agent import tracing

    config = config or TracingConfig()
    capture = config.capture_content
    if capture is None:
        capture = _env_flag("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    tracing.set_capture_content(capture)
    if not config.enabled or _env_flag("OTEL_SDK_DISABLED") or tracing.enabled():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        raise MissingDependencyError("opentelemetry-sdk", "otel", "exporting traces") from None
    name = config.service_name or os.environ.get("OTEL_SERVICE_NAME") or service_name
    resource = Resource.create({"service.name": name} if name else {})
    sampler = None
    if config.sample_ratio is not None:
        sampler = ParentBased(TraceIdRatioBased(config.sample_ratio))
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
    trace.set_tracer_provider(provider)
    return True
