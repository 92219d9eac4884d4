"""Pytest fixtures for the fake Mastodon server (register with `pytest_plugins`).

Why: every test gets a fresh server on an ephemeral port, stopped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import MastodonServer


@pytest.fixture
def mastodon_server() -> Iterator[MastodonServer]:
    with MastodonServer(heartbeat=0.5) as server:
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
