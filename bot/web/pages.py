"""The public pages, at fixed paths (links from elsewhere rely on them): /, /archive/,
/archive/PERIOD, /category/KEY, /search, /about, /healthz. Plain functions: Starlette runs them
in its thread pool, so a store query never holds up the event loop."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.digest.build import build_digest
from bot.digest.period import Period, week_of
from bot.digest.render import context as digest_context
from bot.digest.render import period_label
from bot.health import assess
from bot.web.security import EMBEDDABLE_CSP
from bot.web.site import PER_PAGE, page_number, pages, site

WEEK = re.compile(r"(\d{4})-W(\d{2})")
MAX_QUERY = 200
MAX_SILENCE = 300.0  # `numpolville status`'s default
EMBED_ITEMS = 10


def home(request: Request) -> Response:
    """The current week's veille, live: the HTML digest's content, built from the store now."""
    return _digest_page(request, site(request).current_week(), "home")


def archive(request: Request) -> Response:
    s = site(request)
    first = s.store.first_item_at()
    periods: list[dict[str, Any]] = []
    if first:
        week, start = s.current_week(), week_of(date.fromisoformat(first[:10]), s.tz)
        while week.start >= start.start:
            periods.append({"key": week.key, "label": period_label(week, s.lang)})
            week = week.previous()
    return s.page("archive", s.context(request, "archive", periods=periods))


def archive_period(request: Request) -> Response:
    s = site(request)
    found = WEEK.fullmatch(request.path_params["period"])
    try:
        monday = date.fromisocalendar(int(found[1]), int(found[2]), 1) if found else None
    except ValueError:
        monday = None
    first = s.store.first_item_at()
    if monday is None or not first:
        raise HTTPException(404)
    period = week_of(monday, s.tz)
    if not week_of(date.fromisoformat(first[:10]), s.tz).start <= period.start <= s.current_week().start:
        raise HTTPException(404)
    return _digest_page(request, period, "archive")


def _digest_page(request: Request, period: Period, section: str) -> Response:
    s = site(request)

    def build() -> str:
        digest = build_digest(s.store, s.config, period)
        ctx = digest_context(digest, s.config) | s.context(request, section)
        return s.render("home", ctx)

    return HTMLResponse(s.cached(("digest", period.key, section), build))


def category(request: Request) -> Response:
    s = site(request)
    key = request.path_params["key"]
    if key not in {c["key"] for c in s.categories}:
        raise HTTPException(404)
    page = page_number(request)
    rows = s.store.classified_items(key, PER_PAGE + 1, (page - 1) * PER_PAGE)
    return s.page("category", s.context(
        request, f"category:{key}", key=key, label=s.labels[key], entries=s.entries(rows[:PER_PAGE]),
        feeds=_feeds(request, key, s.labels[key]), **pages(request, page, len(rows) > PER_PAGE)))


def search(request: Request) -> Response:
    s = site(request)
    q = " ".join(request.query_params.get("q", "").split())[:MAX_QUERY]
    page = page_number(request)
    rows = s.store.search(q, PER_PAGE + 1, (page - 1) * PER_PAGE) if q else []
    return s.page("search", s.context(
        request, "search", q=q, entries=s.entries(rows[:PER_PAGE]),
        **pages(request, page, len(rows) > PER_PAGE)))


def embed(request: Request) -> Response:
    """/embed/KEY (or /embed/all): the newest items, for other sites to show in a frame, the one
    kind of page any site may frame."""
    s = site(request)
    key = request.path_params["key"]
    if key != "all" and key not in {c["key"] for c in s.categories}:
        raise HTTPException(404)
    rows = s.store.classified_items(None if key == "all" else key, EMBED_ITEMS)
    heading = s.title if key == "all" else s.labels[key]
    page_url = s.base_url(request) + ("/" if key == "all" else f"/category/{key}")
    response = s.page("embed", s.context(request, heading=heading, entries=s.entries(rows),
                                         page_url=page_url))
    response.headers["content-security-policy"] = EMBEDDABLE_CSP
    return response


def about(request: Request) -> Response:
    s = site(request)
    return s.page("about", s.context(request, "about"))


def healthz(request: Request) -> Response:
    """The judgement of `numpolville status`: 200 when healthy, else 503, with the same JSON."""
    report = assess(site(request).store.health(), MAX_SILENCE)
    return JSONResponse(report, 200 if report["healthy"] else 503)


def _feeds(request: Request, key: str, label: str) -> list[dict[str, str]]:
    """The category's feeds, for feed readers' auto-discovery."""
    s = site(request)
    return [{"type": "application/atom+xml", "title": f"{s.title} — {label}",
             "href": f"/feeds/{key}.atom"},
            {"type": "application/feed+json", "title": f"{s.title} — {label}",
             "href": f"/feeds/{key}.json"}]


def error_page(request: Request, exc: Exception) -> Response:
    """Errors as pages of the site (404, the desk's 403 without a CSRF token, ...)."""
    s = site(request)
    code = getattr(exc, "status_code", 404)
    heading, text = {404: (s.t["not_found"], s.t["not_found_text"]),
                     403: ("403", s.t["forbidden"])}.get(code, (str(code), ""))
    return s.page("message", s.context(request, heading=heading, text=text), code)


ROUTES = [
    Route("/", home),
    Route("/archive/", archive),
    Route("/archive/{period}", archive_period),
    Route("/category/{key}", category),
    Route("/search", search),
    Route("/about", about),
    Route("/embed/{key}", embed),
    Route("/healthz", healthz),
]
