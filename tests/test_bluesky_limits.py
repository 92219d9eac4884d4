"""The write budget: 5,000 points an hour, 3 per create, and a 429's ratelimit-reset obeyed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.bluesky.limits import RateLimited, WriteBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_hourly_points_then_refill() -> None:
    clock = Clock()
    budget = WriteBudget(clock, max_wait=0)
    for _ in range(5000 // 3):
        budget.spend("create")
    with pytest.raises(RateLimited) as e:
        budget.spend("create")
    assert 0 < e.value.until - clock.now <= 3600 / 5000 * 3
    clock.now += 60  # a minute refills 83 points
    for _ in range(27):
        budget.spend("create")
    budget.spend("delete")  # deletes cost 1


def test_server_reset_is_obeyed() -> None:
    clock = Clock()
    budget = WriteBudget(clock, max_wait=0)
    reset = datetime.fromtimestamp(clock.now + 120, timezone.utc)
    assert budget.server_said_wait(reset, None).until == clock.now + 120
    with pytest.raises(RateLimited):
        budget.spend("delete")
    clock.now += 121
    budget.spend("delete")
