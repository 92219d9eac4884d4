"""`numpolville import`: the hashtag's past, recorded as if the bot had been there.

Each source (the home server's tag timeline, each `discovery_instances` server's, Bluesky's
search) is read newest first, page by page, down to `--since` (a Mastodon timeline by its `Link`
header's next page, `sources.next_max_id`); the position reached is stored
after every page (the store's cursors, under "import ..."), so a second run with the same dates,
or one after a crash, starts where the last stopped: a page is fetched again only when the
process died while recording it, and its posts are recorded once (the store's keys).

Posts go through the curator as `PostImported`: the rules record and classify them as live (and
consent applies as live), but prompt and boost only under `[policy] import_prompt` and
`import_boost`. The import itself never writes to a network: effects those keys allow are left
as intents, which the running bot carries out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.config import Config, ConfigError
from bot.curator import Curator
from bot.model import Event, Post, PostImported, PostSeen
from bot.store import Store, iso

log = logging.getLogger("numpolville.import")
DONE = "done"
BLUESKY_WINDOW = timedelta(days=7)  # small enough that a window needs no deep search cursor
BLUESKY_PAGE = 100


@dataclass
class Tally:
    """What one source of the import did, for the progress bar and the final table."""

    network: str
    source: str
    requests: int = 0
    posts: int = 0  # in the date range
    recorded: int = 0  # new items
    done: bool = False


@dataclass
class Page:
    """One page of a source: the posts in range, whether older ones follow, and where to resume."""

    posts: list[Post]
    resume: str | None  # None: the source is exhausted
    requests: int = 1


@dataclass
class Source:
    """A history to read: `fetch(position)` returns the page at a stored position (None: the
    newest)."""

    network: str
    name: str
    fetch: Callable[[str | None], Page]
    tally: Tally = field(init=False)

    def __post_init__(self) -> None:
        self.tally = Tally(self.network, self.name)


def run_import(sources: list[Source], curator: Curator, store: Store, since: datetime,
               until: datetime, on_page: Callable[[Tally], None] = lambda _t: None) -> list[Tally]:
    """Read every source down to `since`, resuming from the stored positions."""
    for source in sources:
        key = f"import {source.name} {iso(since)} {iso(until)}"
        position = store.cursor(source.network, key)
        while position != DONE:
            page = source.fetch(position)
            source.tally.requests += page.requests
            for post in page.posts:
                source.tally.posts += 1
                known = store.item(post.network, post.uri) is not None
                curator.handle(PostImported(post))
                source.tally.recorded += not known and store.item(post.network, post.uri) is not None
            position = page.resume or DONE
            store.set_cursor(source.network, key, position)
            on_page(source.tally)
        source.tally.done = True
        on_page(source.tally)
    return [s.tally for s in sources]


def in_range(created: datetime, since: datetime, until: datetime) -> bool:
    return since <= created < until


# ---- Mastodon ------------------------------------------------------------------------------------

def mastodon_sources(adapter: Any, config: Config, store: Store, since: datetime,
                     until: datetime) -> list[Source]:
    """The home tag timeline, then each discovery server's, foreign posts resolved at home."""
    from bot.mastodon.sources import DiscoveryFeed, TagFeed, entry_created, next_max_id

    home = TagFeed(config, store, adapter.reader, adapter.client, adapter.retry, None)
    feeds: list[Any] = [home] + [
        DiscoveryFeed(instance, config, store, adapter.reader, adapter.client, adapter.retry)
        for instance in config.mastodon.discovery_instances]

    def fetcher(feed: Any) -> Callable[[str | None], Page]:
        local = getattr(feed, "local_status", None)  # a discovery feed's posts are resolved at home

        def fetch(max_id: str | None) -> Page:
            entries = feed.page(max_id=max_id)
            resolves = getattr(feed, "resolves", 0)
            posts = []
            for entry in entries:
                created = entry_created(entry)
                if created is None or not in_range(created, since, until):
                    continue
                status = local(entry) if local else entry
                post = adapter.reader.post(status) if status else None
                if post:
                    posts.append(post)
            # the timeline is in id order, close to creation order: it ends at the first page
            # that holds nothing from the range's start on, or with the server's Link header
            following = next_max_id(entries)
            more = any((entry_created(e) or since) >= since for e in entries)
            return Page(posts, following if more else None,
                        1 + getattr(feed, "resolves", 0) - resolves)
        return fetch

    return [Source("mastodon", feed.name, fetcher(feed)) for feed in feeds]


# ---- Bluesky -------------------------------------------------------------------------------------

def bluesky_windows(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[since, until) in windows of `BLUESKY_WINDOW`, newest first."""
    end = until
    while end > since:
        start = max(since, end - BLUESKY_WINDOW)
        yield start, end
        end = start


def bluesky_sources(adapter: Any, since: datetime, until: datetime) -> list[Source]:
    """`app.bsky.feed.searchPosts` with `tag`, logged in, one source per window: the search's
    cursor is not guaranteed to reach the end of a large result, a week's posts are few."""
    from atproto_client.models.utils import get_model_as_dict

    from bot.bluesky.convert import split_uri
    from bot.bluesky.detect import POST

    ingest = adapter.ingest
    tag = ingest.rules.tag

    def convert(hit: Any) -> Post:
        """The enriched Post (handle, bio, labels, follow) the live path would emit."""
        found: list[Event] = []
        ingest.post(hit, found.append)
        assert isinstance(found[0], PostSeen)
        return found[0].post

    def fetcher(start: datetime, end: datetime) -> Callable[[str | None], Page]:
        def fetch(cursor: str | None) -> Page:
            query = {"q": f"#{tag}", "tag": [tag], "sort": "latest", "limit": BLUESKY_PAGE,
                     "since": _z(start), "until": _z(end), "cursor": cursor}
            res, requests = _patiently(lambda: adapter.client.app.bsky.feed.search_posts(query))
            posts, older = [], False
            for view in res.posts:
                record = get_model_as_dict(view.record)
                did, _, rkey = split_uri(view.uri)
                hit = ingest.rules.judge(did, "create", POST, rkey, view.cid, record)
                if hit is None or hit.kind != "post" or tag not in hit.tags:
                    continue
                post = convert(hit)
                older = older or post.created_at < start
                if in_range(post.created_at, start, end):
                    posts.append(post)
            # A search service that ignores since/until (the reference AppView does) still ends
            # the window: its results are newest first, and one older than the window ends it.
            more = bool(res.cursor) and len(res.posts) >= BLUESKY_PAGE and not older
            return Page(posts, res.cursor if more else None, requests)
        return fetch

    return [Source("bluesky", f"search {start.date()}..{end.date()}", fetcher(start, end))
            for start, end in bluesky_windows(since, until)]


def _patiently(call: Callable[[], Any], attempts: int = 5) -> tuple[Any, int]:
    """The call's result and the requests it took, waiting out 429s (`ratelimit-reset`)."""
    from atproto_client.exceptions import RateLimitExceededError

    for attempt in range(1, attempts + 1):
        try:
            return call(), attempt
        except RateLimitExceededError as e:
            if attempt == attempts:
                raise
            reset = e.reset_at.timestamp() - time.time() if e.reset_at else None
            wait = max(1.0, min(300.0, reset or e.retry_after or 5.0))
            log.info("bluesky: rate limited; waiting %.0f s", wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _z(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def default_until(store: Store, since: datetime) -> datetime:
    """Without `--until`, an import ends when the first one from the same `--since` started: a
    second run resumes that range instead of starting a new one (the live bot has the rest)."""
    key = f"until {iso(since)}"
    stored = store.cursor("import", key)
    if stored:
        return datetime.fromisoformat(stored)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store.set_cursor("import", key, iso(now))
    return now


# ---- the command ---------------------------------------------------------------------------------

def import_history(config: Config, store: Store, since: datetime, until: datetime | None,
                   networks: tuple[str, ...], console: Any = None) -> list[Tally]:
    """Connect to each enabled network asked for, read its history with a progress bar (one line
    per network: pages, posts in range, new items), and return every source's tally."""
    until = until or default_until(store, since)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bot.runtime import build_adapters

    curator = Curator(config, store)
    sources: list[Source] = []
    for adapter in build_adapters(config, store):
        if adapter.network not in networks:
            continue
        curator.bot_ids |= adapter.connect()
        sources += (mastodon_sources(adapter, config, store, since, until)
                    if adapter.network == "mastodon" else bluesky_sources(adapter, since, until))
    if not sources:
        raise ConfigError(config.source, "enabled", "no enabled network to import from "
                          f"(asked: {', '.join(networks)})")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        tasks = {n: progress.add_task(n, total=None) for n in dict.fromkeys(s.network for s in sources)}

        def show(_tally: Tally) -> None:
            for network, task in tasks.items():
                mine = [s.tally for s in sources if s.network == network]
                finished = sum(t.done for t in mine)
                progress.update(task, description=(
                    f"{network}: {finished}/{len(mine)} sources, {sum(t.requests for t in mine)} "
                    f"requests, {sum(t.posts for t in mine)} posts, "
                    f"{sum(t.recorded for t in mine)} new items"))

        show(Tally("", ""))
        return run_import(sources, curator, store, since, until, on_page=show)
