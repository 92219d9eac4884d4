"""The site under test: the real app (`bot.web.app.create_app`) served by uvicorn on 127.0.0.1,
once per session, over the digest tests' store (week 2025-W13, every exclusion, the XSS payloads)
whose clock runs from Saturday 29 March 2025. Registered in conftest's `pytest_plugins`."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Config, parse
from bot.store import Store
from bot.web.app import create_app
from bot.web.auth import add_moderator
from bot.web.server import Background

START = datetime(2025, 3, 29, 12, 0, tzinfo=timezone.utc)  # Saturday of 2025-W13
OLD = 25
MODERATOR, PASSWORD = "camille", "une phrase de passe"


def running_clock(start: datetime = START):  # type: ignore[no-untyped-def]
    """A clock that starts at `start` and then runs: updated_at moves on as it would."""
    t0 = datetime.now(timezone.utc)
    return lambda: start + (datetime.now(timezone.utc) - t0)


def site_store(path: Path) -> Store:
    from test_digest import PAYLOADS
    from test_digest_data import add, build_store, utc

    store = build_store(path)
    store.clock = running_clock()
    for i, text in enumerate(PAYLOADS):
        add(store, 100 + i, "mastodon" if i % 2 else "bluesky", f'h{i}"><script>alert(1)</script>',
            text, utc(2025, 3, 27, 10, i), category="projet" if i % 3 else "contexte",
            link="javascript:alert('link')" if i % 2 else f"https://ok.example/{i}?q=\"><script>",
            title=text)
    add(store, 60, "mastodon", "paula@piaille.example", "Un atelier numérique dans le quartier",
        utc(2025, 3, 28, 9, 0), state="seen", link="https://atelier.example/quartier",
        title="Atelier numérique de quartier")
    for n in range(OLD):  # more than a page, in February (out of the digest's chart)
        add(store, 300 + n, "bluesky", "rita.bsky.social", f"Prospective ancienne numéro {n}",
            utc(2025, 2, 3, 9, n), category="prospective", link=f"https://old.example/{n}",
            title=f"Prospective ancienne {n}")
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Site:
    url: str
    store: Store
    config: Config
    app: Any

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def login(self, name: str = MODERATOR, password: str = PASSWORD) -> httpx.Client:
        """A client signed in as a moderator (the form's CSRF token fetched first)."""
        client = self.client()
        token = csrf(client.get("/login").text)
        r = client.post("/login", data={"username": name, "password": password, "csrf": token})
        assert r.status_code == 303, r.text
        return client


def csrf(html: str) -> str:
    import lxml.html

    return lxml.html.document_fromstring(html).xpath("//input[@name='csrf']/@value")[0]


def site_config(db: Path, **web: object) -> Config:
    return parse({"database": str(db), "language": "fr",
                  "web": {"enabled": True, "bind": "127.0.0.1:8080", **web}}, "(test)")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("site") / "site.db"
    store = site_store(db)
    config = site_config(db)
    add_moderator(store, MODERATOR, PASSWORD)
    app = create_app(config, store, secret="test-secret", cache_seconds=0.5)
    served = Background(config, app, port=0).start()
    yield Site(f"http://127.0.0.1:{served.port}", store, config, app)
    served.stop()
    store.close()
