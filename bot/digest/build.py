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
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import nh3

from bot.config import Config
from bot.digest.period import Period, zone
from bot.store import Store, iso

UNCLASSIFIED = ""  # the section key of items still to sort, shown last
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
    """Only the current period is built entry by entry; the previous ones are counted (entries
    per category, posts per network) from the `items_digest` index, grouped by normalised link
    exactly as `group_entries` groups them."""
    tz = zone(config.digest.timezone)
    history = period.history(HISTORY)
    order = [c.key for c in config.categories]
    lang = config.language if config.language in LABELS else "fr"
    labels = {c.key: c.title(lang) for c in config.categories} | {UNCLASSIFIED: LABELS[lang]["unclassified"]}
    keys = [*order, UNCLASSIFIED]
    # Stored times are ISO strings in UTC to the second, so "created in [start, end)" is a string
    # comparison with the first whole second at or after each boundary; the last one stays
    # truncated, as the store has always read the range.
    bounds = [_bound(p.start) for p in history] + [iso(period.end)]
    excluded = store.digest_excluded_authors()

    current_rows = [dict(zip(_ENTRY_COLUMNS, r, strict=True))
                    for r in store.digest_entries(bounds[-2], bounds[-1]) if (r[0], r[3]) not in excluded]
    current = group_entries(current_rows, order, tz)
    past = _past_counts(store.digest_history(bounds[0], bounds[-2]), bounds, excluded, order)

    def counts(c: Counter[str]) -> dict[str, int]:
        return {k: c.get(k, 0) for k in keys}

    current_counts = Counter(e.category for e in current)
    prev_counts = counts(past[-1][0]) if len(history) > 1 else counts(Counter())
    sections = []
    for key in keys:
        entries = tuple(e for e in current if e.category == key)
        if key == UNCLASSIFIED and not entries and not prev_counts[key]:
            continue
        sections.append(Section(key, labels[key], entries, prev_counts[key]))

    def per_network(c: Counter[str]) -> dict[str, int]:
        return {n: c.get(n, 0) for n in ("mastodon", "bluesky")}

    series = [SeriesPoint(p, counts(entry_counts))
              for p, (entry_counts, _) in zip(history[:-1], past, strict=True)]
    series.append(SeriesPoint(period, counts(current_counts)))
    return Digest(
        period=period, previous_period=period.previous(), language=lang, hashtag=config.hashtag,
        title=LABELS[lang]["title"].format(hashtag=config.hashtag),
        sections=tuple(sections), networks=per_network(Counter(r["network"] for r in current_rows)),
        previous_networks=per_network(past[-1][1]) if len(history) > 1 else {},
        contributors=len({(r["network"], r["author_id"]) for r in current_rows}),
        series=tuple(series[-len(history):]),
        labels=labels, generated_at=store.clock().astimezone(tz),
        public_url=safe_url(config.digest.public_url) or "",
    )


_ENTRY_COLUMNS = ("network", "uri", "url", "author_id", "author_handle", "text", "link", "link_title",
                  "created_at", "state", "category")


def _bound(t: datetime) -> str:
    """The stored form of the first whole second at or after `t`."""
    u = t.astimezone(timezone.utc)
    if u.microsecond:
        u = u.replace(microsecond=0) + timedelta(seconds=1)
    return iso(u)


def _past_counts(rows: list[tuple[Any, ...]], bounds: list[str], excluded: set[tuple[str, str]],
                 order: list[str]) -> list[tuple[Counter[str], Counter[str]]]:
    """For each period before the current one (bounds[i] <= created_at < bounds[i + 1]): entries
    per category and posts per network. Rows are (created_at, network, author_id, link, state,
    category), oldest first. An entry is what `group_entries` would make: one per normalised link
    (http and https alike), one per post without a safe link; its category is `_category`'s."""
    ranked = set(order)
    out: list[tuple[Counter[str], Counter[str]]] = []
    n = len(bounds) - 2  # periods before the current one
    i, total = 0, len(rows)
    for b in range(n):
        end = bounds[b + 1]
        entries: Counter[str] = Counter()
        networks: Counter[str] = Counter()
        groups: dict[str, list[str | None]] = {}
        while i < total and rows[i][0] < end:
            created, network, author_id, link, state, category = rows[i]
            i += 1
            if (network, author_id) in excluded:
                continue
            networks[network] += 1
            vote = category if state == "classified" and category in ranked else None
            norm = normalize_url(link) if link else None
            if norm is None:  # a post of its own
                entries[vote or UNCLASSIFIED] += 1
            else:
                groups.setdefault(norm.split("://", 1)[1], []).append(vote)
        for votes in groups.values():
            if len(votes) == 1:
                entries[votes[0] or UNCLASSIFIED] += 1
            else:
                c = Counter(v for v in votes if v is not None)
                entries[max(order, key=lambda k: (c.get(k, 0), -order.index(k))) if c else UNCLASSIFIED] += 1
        out.append((entries, networks))
    return out


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
    if len(rows) > 1:
        rows = sorted(rows, key=lambda r: (r["created_at"], r["network"], r["uri"]))
    link = None if key.startswith("post:") else key
    title = ""
    for r in rows:
        title = plain_text(r["link_title"])
        if title:
            break
    first_text = ""
    for r in rows:
        t = without_urls(plain_text(r["text"]))
        if t:
            first_text = t
            break
    if not title:
        title = first_words(first_text) or link or safe_url(rows[0]["url"]) or "…"
    sharers: list[Sharer] = []
    seen: set[tuple[str, str]] = set()
    for r in rows:
        who = (r["network"], r["author_handle"])
        if who in seen:
            continue
        seen.add(who)
        sharers.append(Sharer(handle=plain_text(r["author_handle"]).lstrip("@"), network=r["network"],
                              url=safe_url(r["url"]), date=_local_time(r["created_at"], tz)))
    excerpt = shorten(first_text, EXCERPT_CHARS)
    stem = title.rstrip("…")
    if stem == excerpt.rstrip("…") or (excerpt.startswith(stem) and len(excerpt) < 2 * len(title)):
        excerpt = ""  # the title already says it (a post without a link card)
    return Entry(key=key, title=title, link=link, excerpt=excerpt,
                 sharers=tuple(sharers), date=_local_time(rows[0]["created_at"], tz),
                 category=_category(rows, order))


def _local_time(value: str, tz: Any) -> datetime:
    return datetime.fromisoformat(value).astimezone(tz)


def _category(rows: list[dict[str, Any]], order: list[str]) -> str:
    """The most chosen category among the classified shares; ties go to the configured order."""
    if len(rows) == 1:
        r = rows[0]
        return r["category"] if r["state"] == "classified" and r["category"] in order else UNCLASSIFIED
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
    if "<" not in value and "&" not in value and "\x00" not in value and "\ufeff" not in value:
        # Nothing nh3 or unescape would change (checked against them on random text).
        if "script" in value.lower():
            value = _SCRIPT_SCHEME.sub(_defuse, value)
        return " ".join(value.split())  # str.split and re's \s agree on what is a space
    cleaned = nh3.clean(value.replace("<br>", " ").replace("</p>", " "), tags=set())
    text = html.unescape(cleaned)
    # A second pass: decoding may have revealed tags that were written as entities.
    text = html.unescape(nh3.clean(text, tags=set())) if "<" in text else text
    # Defuse script pseudo-URLs written as text, in case a reader or a mail client linkifies them.
    text = _SCRIPT_SCHEME.sub(_defuse, text)
    return _SPACES.sub(" ", text).strip()


_SCRIPT_SCHEME = re.compile(r"\b(javascript|vbscript|livescript)\s*:", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def _defuse(mt: re.Match[str]) -> str:
    return mt.group(1) + " :"


_URL_RE = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


def without_urls(text: str) -> str:
    return " ".join(_URL_RE.sub("", text).split())


def first_words(text: str, n: int = TITLE_WORDS) -> str:
    words = text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-–—")
    return cut + "…"


# http(s), a plain host, then only characters `quote` keeps as they are.
_SAFE_URL = re.compile(r"[hH][tT][tT][pP][sS]?://[A-Za-z0-9.-]+(?:[/?#][A-Za-z0-9:/?#\[\]@!$&'*+,;=%~._-]*)?")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL with a host, percent-encoded so it cannot break out of an attribute, a
    Markdown link or XML; anything else (javascript:, data:, relative) is None."""
    if not url:
        return None
    if _SAFE_URL.fullmatch(url):  # nothing to strip, split wrongly or percent-encode
        return url
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


# Lower-case scheme and host, no port, no query or fragment, nothing to percent-encode.
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?:/[A-Za-z0-9._~/-]*)?")


def normalize_url(url: str | None) -> str | None:
    """The identity of a shared link: scheme and host lower-cased, utm_* and click ids dropped,
    no fragment, no trailing slash. None if it is not a safe http(s) URL."""
    if url and _PLAIN_URL.fullmatch(url):  # already normal but for trailing slashes
        return url.rstrip("/")
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
