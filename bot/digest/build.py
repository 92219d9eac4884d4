"""Build a digest from the store alone: plain dataclasses, no formatting.

One entry per shared link (URLs normalised: no utm_* trackers, no fragment, no trailing slash), so
a link shared by three people on two networks is one entry listing its three sharers; a post
without a link is an entry of its own. Post text is untrusted: it is reduced to plain text here
(`nh3` strips every tag, and the contents of script/style), and each format escapes it again.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import nh3

from bot.config import Config
from bot.digest.period import Period, zone
from bot.store import Store

UNCLASSIFIED = ""  # the section key of items still to sort, shown last
LEFT_OUT_STATES = ("withdrawn", "deleted", "skipped")
PUBLIC = ("public", "unlisted")  # private and direct posts never go into a published digest
NO_UNAUTHENTICATED = "!no-unauthenticated"
TRACKING_PARAMS = ("fbclid", "gclid", "mc_cid", "mc_eid", "igshid")
HISTORY = 8
TITLE_WORDS = 12
EXCERPT_CHARS = 280

LABELS: dict[str, dict[str, str]] = {
    "fr": {"unclassified": "À classer", "title": "Veille #{hashtag}", "mastodon": "Mastodon",
           "bluesky": "Bluesky"},
    "en": {"unclassified": "To sort", "title": "#{hashtag} digest", "mastodon": "Mastodon",
           "bluesky": "Bluesky"},
}


@dataclass(frozen=True)
class Sharer:
    handle: str
    network: str
    url: str | None  # the post, http(s) only
    date: datetime


@dataclass(frozen=True)
class Entry:
    key: str  # normalised link, or "post:network:uri" for a post without a link
    title: str
    link: str | None  # the shared link (normalised, http(s) only), None for a post without one
    excerpt: str
    sharers: tuple[Sharer, ...]
    date: datetime  # first share
    category: str  # category key, or UNCLASSIFIED

    @property
    def url(self) -> str | None:
        """Where the entry's title points: the link, else the first post."""
        return self.link or next((s.url for s in self.sharers if s.url), None)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(sorted({s.network for s in self.sharers}))


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    entries: tuple[Entry, ...]
    previous: int  # entries in the previous period

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def change(self) -> int:
        return self.count - self.previous


@dataclass(frozen=True)
class SeriesPoint:
    period: Period
    counts: dict[str, int]  # section key -> entries

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Digest:
    period: Period
    previous_period: Period
    language: str
    hashtag: str
    title: str
    sections: tuple[Section, ...]  # configured order, then UNCLASSIFIED (only if it has entries)
    networks: dict[str, int]  # posts per network
    previous_networks: dict[str, int]
    contributors: int  # distinct sharers
    series: tuple[SeriesPoint, ...]  # the last HISTORY periods, oldest first
    labels: dict[str, str]  # section key -> label, for every section of the series
    generated_at: datetime
    public_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(s.count for s in self.sections)

    @property
    def previous_total(self) -> int:
        return sum(s.previous for s in self.sections)

    @property
    def posts(self) -> int:
        return sum(self.networks.values())

    @property
    def classified(self) -> list[Entry]:
        return [e for s in self.sections if s.key != UNCLASSIFIED for e in s.entries]


def build_digest(store: Store, config: Config, period: Period) -> Digest:
    tz = zone(config.digest.timezone)
    history = period.history(HISTORY)
    since, until = history[0].start, period.end
    rows = [r for r in store.digest_items(since, until) if included(r)]
    buckets: dict[Period, list[dict[str, Any]]] = {p: [] for p in history}
    for r in rows:
        t = _parse_time(r["created_at"]).astimezone(tz)
        for p in history:
            if p.contains(t):
                buckets[p].append(r)
                break
    order = [c.key for c in config.categories]
    lang = config.language if config.language in LABELS else "fr"
    labels = {c.key: c.title(lang) for c in config.categories} | {UNCLASSIFIED: LABELS[lang]["unclassified"]}
    grouped = {p: group_entries(buckets[p], order, tz) for p in history}

    def counts(entries: list[Entry]) -> dict[str, int]:
        c = Counter(e.category for e in entries)
        return {k: c.get(k, 0) for k in [*order, UNCLASSIFIED]}

    current, prev = grouped[period], grouped[history[-2]] if len(history) > 1 else []
    prev_counts = counts(prev)
    sections = []
    for key in [*order, UNCLASSIFIED]:
        entries = tuple(e for e in current if e.category == key)
        if key == UNCLASSIFIED and not entries and not prev_counts[key]:
            continue
        sections.append(Section(key, labels[key], entries, prev_counts[key]))

    def per_network(rs: list[dict[str, Any]]) -> dict[str, int]:
        c = Counter(r["network"] for r in rs)
        return {n: c.get(n, 0) for n in ("mastodon", "bluesky")}

    return Digest(
        period=period, previous_period=period.previous(), language=lang, hashtag=config.hashtag,
        title=LABELS[lang]["title"].format(hashtag=config.hashtag),
        sections=tuple(sections), networks=per_network(buckets[period]),
        previous_networks=per_network(buckets[history[-2]]) if len(history) > 1 else {},
        contributors=len({(r["network"], r["author_id"]) for r in buckets[period]}),
        series=tuple(SeriesPoint(p, counts(grouped[p])) for p in history),
        labels=labels, generated_at=store.clock().astimezone(tz),
        public_url=safe_url(config.digest.public_url) or "",
    )


def included(row: dict[str, Any]) -> bool:
    """Whether an item may appear in a digest (and be counted)."""
    if row["state"] in LEFT_OUT_STATES or row["deleted"]:
        return False
    if row["visibility"] not in PUBLIC:
        return False
    if row["opted_out"] or row["nobot"]:  # nobot: #nobot, #noindex or #noai in the bio
        return False
    return NO_UNAUTHENTICATED not in (row.get("labels") or [])


def group_entries(rows: list[dict[str, Any]], order: list[str], tz: Any) -> list[Entry]:
    """One entry per normalised link; posts without a (safe) link stay alone. Ordered by date."""
    groups: dict[str, list[dict[str, Any]]] = {}
    links: dict[str, str] = {}
    for r in rows:
        link = normalize_url(r["link"]) if r["link"] else None
        # http:// and https:// of one page are one entry, shown with https if anyone used it.
        key = link.split("://", 1)[1] if link else f"post:{r['network']}:{r['uri']}"
        if link and (key not in links or link.startswith("https:")):
            links[key] = link
        groups.setdefault(key, []).append(r)
    entries = [_entry(links.get(key, key), rs, order, tz) for key, rs in groups.items()]
    return sorted(entries, key=lambda e: (e.date, e.key))


def _entry(key: str, rows: list[dict[str, Any]], order: list[str], tz: Any) -> Entry:
    rows = sorted(rows, key=lambda r: (r["created_at"], r["network"], r["uri"]))
    link = None if key.startswith("post:") else key
    texts = [plain_text(r["text"]) for r in rows]
    title = next((plain_text(r["link_title"]) for r in rows if plain_text(r["link_title"])), "")
    first_text = next((t for t in texts if without_urls(t)), "")
    if not title:
        title = first_words(without_urls(first_text)) or link or safe_url(rows[0]["url"]) or "…"
    sharers: list[Sharer] = []
    seen: set[tuple[str, str]] = set()
    for r in rows:
        who = (r["network"], r["author_handle"])
        if who in seen:
            continue
        seen.add(who)
        sharers.append(Sharer(handle=plain_text(r["author_handle"]).lstrip("@"), network=r["network"],
                              url=safe_url(r["url"]), date=_parse_time(r["created_at"]).astimezone(tz)))
    excerpt = shorten(without_urls(first_text), EXCERPT_CHARS)
    stem = title.rstrip("…")
    if stem == excerpt.rstrip("…") or (excerpt.startswith(stem) and len(excerpt) < 2 * len(title)):
        excerpt = ""  # the title already says it (a post without a link card)
    return Entry(key=key, title=title, link=link, excerpt=excerpt,
                 sharers=tuple(sharers), date=_parse_time(rows[0]["created_at"]).astimezone(tz),
                 category=_category(rows, order))


def _category(rows: list[dict[str, Any]], order: list[str]) -> str:
    """The most chosen category among the classified shares; ties go to the configured order."""
    votes = Counter(r["category"] for r in rows if r["state"] == "classified" and r["category"] in order)
    if not votes:
        return UNCLASSIFIED
    return max(order, key=lambda k: (votes.get(k, 0), -order.index(k)))


# ---- untrusted text and links --------------------------------------------------------------------

def plain_text(value: str | None) -> str:
    """Untrusted post text as plain text: every tag dropped (script/style with their contents),
    entities decoded, whitespace collapsed. Formats escape it again for their own syntax."""
    if not value:
        return ""
    cleaned = nh3.clean(value.replace("<br>", " ").replace("</p>", " "), tags=set())
    text = html.unescape(cleaned)
    # A second pass: decoding may have revealed tags that were written as entities.
    text = html.unescape(nh3.clean(text, tags=set())) if "<" in text else text
    # Defuse script pseudo-URLs written as text, in case a reader or a mail client linkifies them.
    text = _SCRIPT_SCHEME.sub(lambda mt: mt.group(1) + " :", text)
    return re.sub(r"\s+", " ", text).strip()


_SCRIPT_SCHEME = re.compile(r"\b(javascript|vbscript|livescript)\s*:", re.IGNORECASE)


_URL_RE = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


def without_urls(text: str) -> str:
    return re.sub(r"\s+", " ", _URL_RE.sub("", text)).strip()


def first_words(text: str, n: int = TITLE_WORDS) -> str:
    words = text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-–—")
    return cut + "…"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL with a host, percent-encoded so it cannot break out of an attribute, a
    Markdown link or XML; anything else (javascript:, data:, relative) is None."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def normalize_url(url: str | None) -> str | None:
    """The identity of a shared link: scheme and host lower-cased, utm_* and click ids dropped,
    no fragment, no trailing slash. None if it is not a safe http(s) URL."""
    url = safe_url(url)
    if not url:
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS]
    netloc = parts.netloc.lower()
    if parts.port in (80, 443):
        netloc = netloc.rsplit(":", 1)[0]
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, urlencode(query, safe=":/@!$'*,;~"), ""))


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)
