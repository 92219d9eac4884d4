"""Live feeds of the newest classified items: /feeds/all.atom and /feeds/KEY.atom, the same as
.rss and .json (JSON Feed 1.1). What feed readers and the newsletter tools of resource centres
subscribe to, so each answers a conditional GET with 304: the ETag is the body's hash, and
Last-Modified the store's last change that can alter a feed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from feedgen.feed import FeedGenerator
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.digest.build import Entry
from bot.digest.render import entry_html
from bot.web.site import Site, site

LATEST = 50  # items per feed
MEDIA_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml",
               "json": "application/feed+json"}


def feed(request: Request) -> Response:
    s = site(request)
    name, _, fmt = request.path_params["name"].rpartition(".")
    keys = {c["key"] for c in s.categories}
    if fmt not in MEDIA_TYPES or (name != "all" and name not in keys):
        raise HTTPException(404)
    changed = _last_change(s)  # read first: a change during the build gives a newer date
    rows = s.store.classified_items(None if name == "all" else name, LATEST)
    self_url = f"{s.base_url(request)}/feeds/{name}.{fmt}"
    page_url = s.base_url(request) + ("/" if name == "all" else f"/category/{name}")
    title = s.title if name == "all" else f"{s.title} — {s.labels[name]}"
    items = list(zip(rows, s.entries(rows), strict=True))
    body = (_json_feed(s, title, self_url, page_url, items) if fmt == "json"
            else _xml_feed(s, fmt, title, self_url, page_url, items, changed))
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Last-Modified": format_datetime(changed, usegmt=True),
               "Cache-Control": "no-cache"}
    if _not_modified(request, etag, changed):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8", headers=headers)


def _last_change(s: Site) -> datetime:
    stamp = s.store.last_change()
    t = datetime.fromisoformat(stamp) if stamp else datetime(2000, 1, 1, tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)


def _not_modified(request: Request, etag: str, changed: datetime) -> bool:
    """If-None-Match wins over If-Modified-Since (RFC 9110). A date alone is believed only once
    the second of the last change is over: two changes within one second share a date."""
    match = request.headers.get("if-none-match")
    if match is not None:
        return etag in {m.strip().removeprefix("W/") for m in match.split(",")} or match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if not since:
        return False
    try:
        t = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    settled = changed + timedelta(seconds=1) <= datetime.now(timezone.utc)
    return t.tzinfo is not None and settled and t >= changed


def _updated(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["classified_at"] or row["created_at"])


def _xml_feed(s: Site, fmt: str, title: str, self_url: str, page_url: str,
              items: list[tuple[dict[str, Any], Entry]], changed: datetime) -> str:
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(title)
    fg.subtitle(s.t["about_intro"])
    fg.link(href=page_url, rel="alternate")
    fg.link(href=self_url, rel="self")
    fg.language(s.lang)
    fg.author(name=s.title)
    fg.generator("numpolville-bot")
    fg.updated(changed)
    fg.lastBuildDate(changed)
    for row, e in items:
        fe = fg.add_entry(order="append")
        fe.id(row["uri"])
        if fmt == "rss":
            fe.guid(row["uri"], permalink=False)
        fe.title(e.title)
        if e.url:
            fe.link(href=e.url)
        if fmt == "rss":
            fe.description(entry_html(e, s.lang))
        else:
            fe.content(entry_html(e, s.lang), type="html")
            fe.summary(e.excerpt or e.title)
        fe.author(name="@" + e.sharers[0].handle)
        fe.category(term=e.category, label=s.labels[e.category])
        fe.published(e.date)
        fe.updated(_updated(row))
    return (fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)).decode("utf-8")


def _json_feed(s: Site, title: str, self_url: str, page_url: str,
               items: list[tuple[dict[str, Any], Entry]]) -> str:
    """JSON Feed 1.1 (jsonfeed.org/version/1.1): `content_html` is the same nh3-cleaned HTML as
    the Atom and RSS feeds; <, > and & are escaped as in the digest's JSON."""
    data = {
        "version": "https://jsonfeed.org/version/1.1", "title": title, "home_page_url": page_url,
        "feed_url": self_url, "description": s.t["about_intro"], "language": s.lang,
        "authors": [{"name": s.title}],
        "items": [_present({
            "id": row["uri"], "url": e.url, "external_url": e.link, "title": e.title,
            "content_html": entry_html(e, s.lang), "summary": e.excerpt or e.title,
            "date_published": e.date.isoformat(), "date_modified": _updated(row).isoformat(),
            "authors": [_present({"name": "@" + p.handle, "url": p.url}) for p in e.sharers],
            "tags": [s.labels[e.category]],
        }) for row, e in items],
    }
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def _present(d: dict[str, Any]) -> dict[str, Any]:
    """JSON Feed leaves out what is unknown rather than writing null."""
    return {k: v for k, v in d.items() if v is not None}


ROUTES = [Route("/feeds/{name}", feed)]
