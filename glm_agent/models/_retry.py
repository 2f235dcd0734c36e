"""When to retry an HTTP model request, and how long to wait: shared by the sync and async paths."""

from __future__ import annotations

import email.utils
import random
import time

import httpx

from glm_agent.exceptions import ModelError, ModelHTTPError

__all__ = ["RetryPolicy"]

#: 408 and 409 are what OpenAI's own client also retries; 429 and 5xx are overload or restarts.
RETRY_STATUSES = frozenset({408, 409, 429})


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The wait a server asks for in `retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class RetryPolicy:
    """Exponential backoff with jitter, honouring `Retry-After`.

    Each `after_*` method either returns the seconds to wait before attempt `attempt + 1` or
    raises the error the caller should see.

    Args:
        max_retries: Retries after the first attempt.
        backoff: Base delay in seconds; attempt n waits about `backoff * 2**n`.
        max_backoff: Cap on the computed delay.
        max_retry_after: A longer `Retry-After` is not waited for: the error is raised instead.
        seed: Seeds the jitter (for reproducible tests).
    """

    def __init__(
        self,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        seed: int | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._rng = random.Random(seed)

    def backoff_delay(self, attempt: int) -> float:
        """The jittered delay after failed attempt `attempt` (0-based)."""
        base = min(self.max_backoff, self.backoff * 2.0**attempt)
        # "Equal jitter": spreads clients apart without ever retrying at once.
        return base * (0.5 + self._rng.random() / 2)

    def after_status(self, attempt: int, response: httpx.Response, model: str) -> float:
        """Delay before retrying an error status, or raise `ModelHTTPError` (body included)."""
        status = response.status_code
        error = ModelHTTPError(status, response.text, model=model)
        if attempt >= self.max_retries or not (status in RETRY_STATUSES or status >= 500):
            raise error
        asked = retry_after_seconds(response.headers)
        if asked is None:
            return self.backoff_delay(attempt)
        if asked > self.max_retry_after:
            raise error
        return asked

    def after_error(self, attempt: int, error: httpx.TransportError, url: str) -> float:
        """Delay before retrying a transport failure, or raise `ModelError`."""
        if isinstance(error, httpx.ReadTimeout | httpx.WriteTimeout):
            # The server is up but slow: retrying would only multiply the wait.
            raise ModelError(f"{url} timed out waiting for the model ({type(error).__name__})")
        if attempt >= self.max_retries:
            tries = attempt + 1
            raise ModelError(
                f"could not get an answer from {url} after {tries} attempt(s): "
                f"{type(error).__name__}: {error}"
            )
        return self.backoff_delay(attempt)
