"""Throttling failed console logins: per username and per client address, with back-off."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from glm_agent.exceptions import TooManyRequestsError

__all__ = ["LoginThrottle"]


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
