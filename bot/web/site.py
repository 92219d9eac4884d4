"""What every page of the site needs: the configuration, the store, the templates and the texts,
and how to turn a store row into an entry. Handlers get it with `site(request)`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot.config import Config
from bot.digest.build import UNCLASSIFIED, Entry, make_entry
from bot.digest.period import Period, week_of, zone
from bot.digest.render import NETWORK_NAMES, environment
from bot.model import Event
from bot.store import Store
from bot.web.texts import PURPOSES, words

PER_PAGE = 20
MAX_PAGE = 10_000


class Site:
    def __init__(self, config: Config, store: Store, dispatch: Callable[[Event], Any],
                 cache_seconds: float) -> None:
        self.config, self.store, self.dispatch = config, store, dispatch
        self.lang = config.language
        self.t = words(self.lang, config.hashtag)
        self.tz = zone(config.digest.timezone)
        self.title = config.web.title or self.t["site_title"]
        self.labels = {c.key: c.title(self.lang) for c in config.categories} | {
            UNCLASSIFIED: "—"}
        self.categories = [{"key": c.key, "number": c.number, "label": c.title(self.lang),
                            "purpose": PURPOSES.get(self.lang, {}).get(c.key, "")}
                           for c in config.categories]
        self.cache_seconds = cache_seconds
        self._cache: dict[Any, tuple[float, str]] = {}
        self._cache_lock = threading.Lock()
        self._building: dict[Any, threading.Lock] = {}

    # ---- time -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.store.clock().astimezone(self.tz)

    def current_week(self) -> Period:
        return week_of(self.now().date(), self.tz)

    # ---- rendering ------------------------------------------------------------------------------

    def base_url(self, request: Request) -> str:
        """Absolute links (feeds): `[web] public_url`, else the address the request came to."""
        return self.config.web.public_url or str(request.base_url).rstrip("/")

    def context(self, request: Request, section: str = "", **values: Any) -> dict[str, Any]:
        root = ""  # the site's paths are absolute: it is served at the root of its host
        feeds = [{"type": "application/atom+xml", "title": self.title, "href": f"{root}/feeds/all.atom"}]
        return {"t": self.t, "lang": self.lang, "site_title": self.title, "root": root,
                "categories": self.categories, "labels": self.labels, "networks": NETWORK_NAMES,
                "section": section, "feeds": feeds, "q": "", **values}

    def render(self, name: str, context: dict[str, Any]) -> str:
        return environment(self.config).get_template(f"site/{name}.html.j2").render(context)

    def page(self, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        return HTMLResponse(self.render(name, context), status)

    def cached(self, key: Any, build: Callable[[], str]) -> str:
        """A page that is costly to build (a whole digest), kept `cache_seconds`: a change shows
        at most that late (plus one build). One thread builds it; while it does, the others
        are given the page it replaces, or wait for the first one."""
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            lock = self._building.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=hit is None):
            return hit[1]  # type: ignore[index]  # another thread is building it
        try:
            with self._cache_lock:
                fresh = self._cache.get(key)
            if fresh and fresh[0] > time.monotonic():
                return fresh[1]
            body = build()
            with self._cache_lock:
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = (time.monotonic() + self.cache_seconds, body)
            return body
        finally:
            lock.release()

    def entries(self, rows: list[dict[str, Any]]) -> list[Entry]:
        """One entry per item (pages and feeds list items, not the digest's grouped links)."""
        return [make_entry([r], r["category"] if r["state"] == "classified" else UNCLASSIFIED,
                           self.tz) for r in rows]


def site(request: Request) -> Site:
    """The Site of the application serving `request` (set by `create_app`)."""
    return request.app.state.site


def page_number(request: Request) -> int:
    """`?page=N`, 1 when absent or not a page number."""
    value = request.query_params.get("page", "1")
    return min(int(value), MAX_PAGE) if value.isdigit() and int(value) > 0 else 1


def pages(request: Request, page: int, has_next: bool) -> dict[str, Any]:
    """The previous and next page links of a paginated list (the query string kept)."""
    def link(n: int) -> str:
        params = dict(request.query_params) | {"page": str(n)}
        if n == 1:
            params.pop("page")
        query = urlencode(params)
        return request.url.path + (f"?{query}" if query else "")

    return {"page": page, "previous_page": link(page - 1) if page > 1 else "",
            "next_page": link(page + 1) if has_next else ""}

