"""Write budget: Bluesky counts points per account (create 3, update 2, delete 1; 5,000 an hour,
35,000 a day). The bot spends them through token buckets and stands still when the server answers
429 until its `ratelimit-reset`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

POINTS = {"create": 3, "update": 2, "delete": 1}


class RateLimited(Exception):
    """Not now: the budget is spent until `until` (epoch seconds); the intent is retried later."""

    def __init__(self, until: float) -> None:
        self.until = until
        super().__init__(f"Bluesky write limit reached until "
                         f"{datetime.fromtimestamp(until, timezone.utc):%H:%M:%S} UTC")


class Bucket:
    """`capacity` points, refilled evenly over `period` seconds."""

    def __init__(self, capacity: float, period: float, clock: Callable[[], float] = time.time) -> None:
        self.capacity, self.rate, self.clock = capacity, capacity / period, clock
        self.tokens, self.at = capacity, clock()

    def wait_for(self, points: float) -> float:
        """Seconds until `points` are available (0: now)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return max(0.0, (points - self.tokens) / self.rate)


class WriteBudget:
    def __init__(self, clock: Callable[[], float] = time.time, max_wait: float = 5.0) -> None:
        self.buckets = [Bucket(5000, 3600, clock), Bucket(35000, 86400, clock)]
        self.clock, self.max_wait = clock, max_wait
        self.blocked_until = 0.0
        self._lock = threading.Lock()

    def spend(self, operation: str) -> None:
        """Take the points for one write, waiting a little if that is enough; else RateLimited."""
        points = POINTS[operation]
        with self._lock:
            now = self.clock()
            wait = max([self.blocked_until - now] + [b.wait_for(points) for b in self.buckets])
            if wait > self.max_wait:
                raise RateLimited(now + wait)
            if wait > 0:
                time.sleep(wait)
            for b in self.buckets:
                b.wait_for(points)
                b.tokens -= points

    def server_said_wait(self, reset_at: datetime | None, retry_after: float | None) -> RateLimited:
        """Record a 429 and return the error to raise."""
        until = reset_at.timestamp() if reset_at else self.clock() + (retry_after or 60.0)
        with self._lock:
            self.blocked_until = max(self.blocked_until, until)
        return RateLimited(until)
