"""Pytest fixtures for the fake Mastodon server (register with `pytest_plugins`).

Why: every test gets a fresh server on an ephemeral port, stopped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .flavours import FLAVOURS
from .server import MastodonServer


@pytest.fixture
def mastodon_server() -> Iterator[MastodonServer]:
    with MastodonServer(heartbeat=0.5) as server:
        yield server


@pytest.fixture
def server() -> Iterator[MastodonServer]:
    """A server whose rate limit never gets in the way: Mastodon's real one (300 calls per 5 min)
    would make the bot wait minutes in a burst of 100. Waiting is right (test_mastodon_adapter
    checks it under a small window of its own), but it is not what the fault scenarios measure."""
    with MastodonServer(heartbeat=0.5, rate_limit=100_000) as server:
        yield server


@pytest.fixture(params=sorted(FLAVOURS))
def flavoured_server(request: pytest.FixtureRequest) -> Iterator[MastodonServer]:
    """`server`, once per server family (flavours.py): Mastodon, GoToSocial, Akkoma."""
    with MastodonServer(heartbeat=0.5, rate_limit=100_000, flavour=request.param) as server:
        yield server


@pytest.fixture
def federated_servers() -> Iterator[tuple[MastodonServer, MastodonServer]]:
    """(home.test, piaille.test); home can resolve statuses from piaille."""
    with (
        MastodonServer(domain="home.test", heartbeat=0.5) as home,
        MastodonServer(domain="piaille.test", heartbeat=0.5) as piaille,
    ):
        home.known_remote(piaille)
        yield home, piaille
