"""Prometheus metrics of one app, in its own registry (never the process-global one)."""

from __future__ import annotations

from typing import Any

__all__ = ["Metrics"]


class Metrics:
    """Counters and histograms for requests, latency, tokens, tool calls and errors."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "glm_agent_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "glm_agent_http_request_seconds",
            "Time to the end of the response, by route.",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.tokens = Counter(
            "glm_agent_tokens",
            "Model tokens by agent or model and kind (input / output).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "glm_agent_tool_calls",
            "Tool calls run by agents, by tool and status.",
            ["model", "tool", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "glm_agent_errors",
            "Error responses and stream errors by code.",
            ["code"],
            registry=self.registry,
        )

    def observe_run(self, model: str, result: Any) -> None:
        """Count a finished run's tokens and tool calls."""
        self.tokens.labels(model, "input").inc(result.usage.input_tokens)
        self.tokens.labels(model, "output").inc(result.usage.output_tokens)
        for record in result.tool_calls:
            self.tool_calls.labels(model, record.call.name, record.status).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
