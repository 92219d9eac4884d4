"""Runtime fault switches and the per-token rate limiter.

Why: the bot's resilience (backoff, reconnects, fallbacks to polling) can only
be tested against a server that misbehaves on demand. Everything here is
thread-safe so tests can flip switches while requests are in flight.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Optional


@dataclass
class ForcedStatus:
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: Optional[float]


class Faults:
    """Switches read by the app middleware on every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streaming_enabled = True
        self.hashtag_stream_enabled = True
        self.sse_enabled = True  # off: WebSocket only, like GoToSocial
        self.silent_streams: set[str] = set()  # subscriptions accepted and never fed ("hashtag")
        self.streaming_wss = False  # advertise wss:// on the plain port: the TLS handshake fails
        self.link_headers = True  # off: no Link header, as from a server (or proxy) without them
        self._forced: list[ForcedStatus] = []
        self._delays: list[tuple[re.Pattern[str], float]] = []

    def force_status(
        self, path_regex: str, status_code: int, count: int = 1, retry_after: Optional[float] = None
    ) -> None:
        """Answer the next `count` requests whose path matches with `status_code`."""
        with self._lock:
            self._forced.append(ForcedStatus(re.compile(path_regex), status_code, count, retry_after))

    def delay(self, path_regex: str, seconds: float) -> None:
        """Delay every matching request by `seconds` (0 removes the delay)."""
        with self._lock:
            self._delays = [(p, s) for p, s in self._delays if p.pattern != path_regex]
            if seconds > 0:
                self._delays.append((re.compile(path_regex), seconds))

    def take_forced(self, path: str) -> Optional[ForcedStatus]:
        with self._lock:
            for f in self._forced:
                if f.remaining > 0 and f.pattern.search(path):
                    f.remaining -= 1
                    return f
            self._forced = [f for f in self._forced if f.remaining > 0]
        return None

    def delay_for(self, path: str) -> float:
        with self._lock:
            return max((s for p, s in self._delays if p.search(path)), default=0.0)

    def clear(self) -> None:
        with self._lock:
            self._forced.clear()
            self._delays.clear()
            self.streaming_enabled = True
            self.hashtag_stream_enabled = True
            self.sse_enabled = True
            self.silent_streams = set()
            self.streaming_wss = False
            self.link_headers = True


class RateLimiter:
    """Fixed windows aligned on multiples of `period`, like Mastodon's rack-attack throttles."""

    def __init__(self, limit: int = 300, period: float = 300.0) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.period = period
        self._buckets: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> tuple[bool, int, float]:
        """Count one request; return (allowed, remaining, reset_epoch)."""
        with self._lock:
            now = time.time()
            start = math.floor(now / self.period) * self.period
            w_start, count = self._buckets.get(key, (start, 0))
            if w_start != start:
                count = 0
            count += 1
            self._buckets[key] = (start, count)
            return count <= self.limit, max(0, self.limit - count), start + self.period

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
