"""Build a digest from the store alone: plain dataclasses, no formatting.

One entry per shared link (URLs normalised: no utm_* trackers, no fragment, no trailing slash), so
a link shared by three people on two networks is one entry listing its three sharers; a post
without a link is an entry of its own. Post text is untrusted: it is reduced to plain text here
(`nh3` strips every tag, and the contents of script/style), and each format escapes it again.

Every entry is counted, in this period and the previous ones, but each category lists only its
best `[digest] max_entries` (most sharers, then the newest), and only those are built: a busy
week has thousands of entries, which nobody reads and which took seconds to build and render.
"""

from __future__ import annotations

import heapq
import html
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple
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
    entries: tuple[Entry, ...]  # the listed ones, best first: at most `digest.max_entries`
    previous: int  # entries in the previous period
    count: int  # every entry of the period in this category, listed or not

    @property
    def change(self) -> int:
        return self.count - self.previous

    @property
    def more(self) -> int:
        """Entries of the category the cap left out ("… and N more")."""
        return self.count - len(self.entries)


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
    def listed(self) -> int:
        """Entries shown in full, over every section (at most `total`)."""
        return sum(len(s.entries) for s in self.sections)

    @property
    def classified(self) -> list[Entry]:
        return [e for s in self.sections if s.key != UNCLASSIFIED for e in s.entries]


def build_digest(store: Store, config: Config, period: Period) -> Digest:
    """Every entry of the period is counted, but only the best `digest.max_entries` of each
    category are built in full (most sharers first, then the newest): a week of thousands of
    links stays readable, and cheap to build. Every period, this one and the 7 before it, is
    counted by `tally` from the links and votes of its shares."""
    tz = zone(config.digest.timezone)
    history = period.history(HISTORY)
    order = [c.key for c in config.categories]
    lang = config.language if config.language in LABELS else "fr"
    labels = {c.key: c.title(lang) for c in config.categories} | {UNCLASSIFIED: LABELS[lang]["unclassified"]}
    keys = [*order, UNCLASSIFIED]
    # Stored times are ISO strings in UTC, truncated to the second, so "created in [start, end)"
    # is a string comparison with the first whole second at or after each boundary. (The end of
    # a span that runs until now is such a boundary too: truncated, it left out what was posted
    # in the current second.)
    bounds = [_bound(p.start) for p in history] + [_bound(period.end)]

    shares = store.digest_shares(bounds[-2], bounds[-1])
    tallied, shared = tally([s[3] for s in shares], [s[4] for s in shares], order)
    cap = config.digest.max_entries
    listed = _listed(store, candidates(shares, shared, order, cap), cap, tz)
    past = [(tally(links, votes, order)[0], posts)
            for posts, links, votes in store.digest_links(bounds[:-1])]  # the 7 periods before

    def counts(c: Counter[str]) -> dict[str, int]:
        return {k: c.get(k, 0) for k in keys}

    current, previous = counts(tallied), counts(past[-1][0])
    sections = tuple(Section(k, labels[k], tuple(listed.get(k, ())), previous[k], current[k])
                     for k in keys if k != UNCLASSIFIED or current[k] or previous[k])
    series = [SeriesPoint(p, counts(c)) for p, (c, _) in zip(history[:-1], past, strict=True)]
    networks, previous_networks = Counter(r[1] for r in shares), past[-1][1]  # every network
    return Digest(
        period=period, previous_period=period.previous(), language=lang, hashtag=config.hashtag,
        title=LABELS[lang]["title"].format(hashtag=config.hashtag), sections=sections,
        networks={n: networks.get(n, 0) for n in previous_networks}, previous_networks=previous_networks,
        contributors=len({(r[1], r[2]) for r in shares}),
        series=(*series, SeriesPoint(period, current)),
        labels=labels, generated_at=store.clock().astimezone(tz),
        public_url=safe_url(config.digest.public_url) or "",
    )


def _bound(t: datetime) -> str:
    """The stored form of the first whole second at or after `t`."""
    u = t.astimezone(timezone.utc)
    if u.microsecond:
        u = u.replace(microsecond=0) + timedelta(seconds=1)
    return iso(u)


def tally(links: list[str | None], votes: list[str | None],
          order: list[str]) -> tuple[Counter[str], list[list[int]]]:
    """Entries per category of a period from its shares' links and votes (a share's category
    once classified, else None), and where the shares of each link shared more than once are.
    One entry per `link_key`, a share without a (safe) link being an entry of its own; a link
    shared once, almost all of them, is counted without building a group."""
    keys = list(map(link_key, links))
    shared = {k for k, n in Counter(keys).items() if n > 1 and k is not None}
    counted = Counter(v for k, v in zip(keys, votes, strict=True) if k not in shared)
    out: Counter[str] = Counter({v: n for v, n in counted.items() if v is not None and v in order})
    if others := sum(n for v, n in counted.items() if v is None or v not in order):
        out[UNCLASSIFIED] += others
    groups: dict[str, list[int]] = {}
    if shared:
        for i, k in enumerate(keys):
            if k in shared:
                groups.setdefault(k, []).append(i)
    out.update(majority([votes[i] for i in positions], order) for positions in groups.values())
    return out, list(groups.values())


def majority(votes: list[str | None], order: list[str]) -> str:
    """An entry's category: the most chosen among its shares' votes, ties going to the
    configured order; UNCLASSIFIED without a vote."""
    if len(votes) == 1:
        return votes[0] if votes[0] in order else UNCLASSIFIED
    c = Counter(v for v in votes if v in order)
    return max(order, key=lambda k: (c.get(k, 0), -order.index(k))) if c else UNCLASSIFIED


class Group(NamedTuple):
    """The shares of one entry, before it is built: enough to rank it. Tuples compare as
    entries rank: more sharers first, then the newer first share."""

    people: int  # distinct sharers
    first: int  # where its first share is among the period's shares (oldest first)
    category: str
    rowids: tuple[int, ...]  # oldest first


def candidates(shares: list[tuple[Any, ...]], shared: list[list[int]], order: list[str],
               cap: int) -> list[Group]:
    """The groups that may be listed (0 as `cap`: all of them): every link shared more than
    once, and the newest `cap` shares of each category among the others (a share alone
    ranks only by its date). `shares` are `Store.digest_shares` rows, oldest first."""
    out = []
    for positions in shared:
        rows = [shares[i] for i in positions]
        out.append(Group(len({(r[1], r[2]) for r in rows}), positions[0],
                         majority([r[4] for r in rows], order), tuple(r[0] for r in rows)))
    grouped = {i for positions in shared for i in positions}
    taken: Counter[str] = Counter()
    full: set[str] = set()
    for i in reversed(range(len(shares))):
        if len(full) > len(order):  # every category, UNCLASSIFIED included, has its newest
            break
        category = majority([shares[i][4]], order)
        if i in grouped or category in full:
            continue
        out.append(Group(1, i, category, (shares[i][0],)))
        taken[category] += 1
        if taken[category] == cap:
            full.add(category)
    return out


def _listed(store: Store, groups: list[Group], cap: int, tz: Any) -> dict[str, list[Entry]]:
    """The entries each category lists, best first, at most `cap` of them (0: all): only these
    are read in full from the store and built."""
    by_category: dict[str, list[Group]] = {}
    for g in groups:
        by_category.setdefault(g.category, []).append(g)
    chosen = {k: heapq.nlargest(cap, gs) if cap else sorted(gs, reverse=True)
              for k, gs in by_category.items()}
    rows: dict[Group, list[dict[str, Any]]] = {g: [] for gs in chosen.values() for g in gs}
    owner = {i: g for g in rows for i in g.rowids}
    for r in store.digest_items(owner):  # in the order of an entry's shares
        rows[owner[r["rowid"]]].append(r)
    return {k: [make_entry(rows[g], g.category, tz) for g in gs] for k, gs in chosen.items()}


def make_entry(rows: list[dict[str, Any]], category: str, tz: Any) -> Entry:
    """An entry from its shares' full rows, oldest first."""
    links = [n for n in map(normalize_url, (r["link"] for r in rows)) if n]
    link = next((n for n in links if n.startswith("https:")), links[0] if links else None)
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
    key = link or f"post:{rows[0]['network']}:{rows[0]['uri']}"
    return Entry(key=key, title=title, link=link, excerpt=excerpt, sharers=tuple(sharers),
                 date=_local_time(rows[0]["created_at"], tz), category=category)


def _local_time(value: str, tz: Any) -> datetime:
    return datetime.fromisoformat(value).astimezone(tz)


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
_PLAIN_URL = re.compile(r"https?://([a-z0-9.-]+(?:/[A-Za-z0-9._~/-]*)?)")


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


def link_key(link: str | None) -> str | None:
    """What makes shares one entry: the normalised link without its scheme (http:// and
    https:// of a page are one entry); None without a safe link (the post is an entry alone)."""
    plain = _PLAIN_URL.fullmatch(link) if link else None
    if plain:  # the common case, without building a new URL
        return plain[1].rstrip("/")
    norm = normalize_url(link)
    return norm.partition("://")[2] if norm else None
