"""Throttles: failed console logins (per username and address, with back-off) and the
customer routes (token buckets per address)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from glm_agent.exceptions import TooManyRequestsError

__all__ = ["AddressLimiter", "LoginThrottle"]


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """After `free` failed logins for a username (or from an address) within `window` seconds,
    each further attempt waits `base * 2**(extra failures)` seconds, up to `cap`."""

    free: int = 5
    window: float = 900.0
    base: float = 1.0
    cap: float = 300.0
    _seen: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _wait(self, key: str, now: float) -> float:
        f = self._seen.get(key)
        if f is None or now - f.last > self.window or f.count < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2.0 ** (f.count - self.free))
        return float(max(0.0, f.last + delay - now))

    def check(self, username: str, client: str) -> None:
        """Raise `TooManyRequestsError` while the username or the address must wait."""
        now = time.monotonic()
        with self._lock:
            wait = max(self._wait("u:" + username, now), self._wait("c:" + client, now))
        if wait > 0:
            raise TooManyRequestsError(
                f"too many failed logins; try again in {max(1, round(wait))} s",
                retry_after=wait,
                code="login_throttled",
            )

    def failed(self, username: str, client: str) -> None:
        """Count a failed login."""
        now = time.monotonic()
        with self._lock:
            for key in ("u:" + username, "c:" + client):
                f = self._seen.setdefault(key, _Failures())
                if now - f.last > self.window:
                    f.count = 0
                f.count, f.last = f.count + 1, now
            if len(self._seen) > 10_000:  # forget the oldest under a flood of names
                for key in sorted(self._seen, key=lambda k: self._seen[k].last)[:5_000]:
                    del self._seen[key]

    def succeeded(self, username: str, client: str) -> None:
        """A good login clears the username's failures (not the address's)."""
        with self._lock:
            self._seen.pop("u:" + username, None)


class AddressLimiter:
    """Token buckets per client address: `check(address)` raises `TooManyRequestsError` when
    the address is over `per_minute` (bursts of `burst`)."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Spend one request of `address`."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self._buckets[address] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise TooManyRequestsError(
                    f"too many requests from this address; retry in {max(1, round(wait))} s",
                    retry_after=wait,
                )
            self._buckets[address] = (tokens - 1.0, now)
            if len(self._buckets) > 50_000:  # forget full buckets under a flood of addresses
                for key in [k for k, (t, _) in self._buckets.items() if t >= self.burst]:
                    del self._buckets[key]
