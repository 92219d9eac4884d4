"""The listeners: the hashtag, the bot's notifications, and the tag timelines of other servers.

A poll is the ground truth and a stream only makes things faster. Every feed reads its timeline
from a stored cursor (`min_id` paging, oldest first); a feed with a stream keeps polling every
`poll_interval` while it streams (the reconciliation poll). An entry that poll finds and the
stream does not deliver within `RECONCILE_GRACE` seconds is counted as missed, logged, and
demotes the stream: the feed then only polls for `STREAM_RETRY_AFTER` seconds, and `status` says
why. So a stream that is refused at any layer, stays silent, drops entries, or accepts a
subscription it never feeds (GoToSocial's hashtag stream) costs at most `poll_interval` plus a few
seconds of latency, never a post.

Edits keep a status's place in its timeline, so `min_id` paging never reads one again: the
streams bring them (`status.update`), and without a stream the mentions feed reads `update`
notifications (Mastodon, Pleroma and Akkoma notify an edit to those who boosted the status) and
the tag feed re-reads the newest page of its timeline each poll, handing on every edit newer
than the one the store has seen (`Store.last_edit`).

A first start reads every entry created since that start (the time is stored as the cursor until
an entry comes), never "from the newest entry": the post that made the tag exist on a
GoToSocial server, whose tag timeline is 404 until then, is read like any other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from mastodon import Mastodon
from mastodon.errors import MastodonUnauthorizedError
from websockets.exceptions import ConnectionClosed

from bot.adapter import Emit, PermanentError
from bot.config import Config
from bot.mastodon.client import Retrier, make_client
from bot.mastodon.reader import PostReader
from bot.mastodon.stream import StreamRefused, Streams, events
from bot.model import Event, Item, PostDeleted, PostEdited, PostSeen
from bot.store import Store, iso

log = logging.getLogger("numpolville.mastodon")

PAGE = 40
RECONCILE_GRACE = 5.0  # how long after a poll found an entry the stream may still bring it
STREAM_RETRY_AFTER = 600.0  # a demoted stream is tried again after this long; the feed polls meanwhile
REOPEN_FIRST = 5.0  # a stream that cannot be opened is tried again after 5, 10, 20 s... (polling)
QUICK_DROP = 5.0
SINCE = "since:"  # a cursor that is a time: the first start's, until the first entry comes
REREADS_PER_POLL = 5  # statuses read again a poll, at most (requests against the 300 / 5 min)
VANISH_SLACK = timedelta(days=1)  # a timeline is in id order, creation times only close to it
EDITS_SINCE = "tag edits since"  # the cursor holding when the tag feed first looked for edits
# The notifications read: mentions, and `update`, an edit of a status the bot boosted (Mastodon
# since 3.5, Pleroma, Akkoma). A server without that type drops it from the query: GoToSocial
# (notificationsget.go) and Akkoma's permissive CastAndValidate both ignore an unknown type.
NOTIFIED = ["mention", "update"]


def newer(a: str, b: str | None) -> bool:
    """Is id `a` after id `b`? Mastodon ids are numeric strings, GoToSocial's ULIDs and Akkoma's
    flake ids fixed-width codes: ordering by (length, text) is right for all of them."""
    return b is None or (len(a), a) > (len(b), b)


def _order(entry: Mapping[str, Any]) -> tuple[int, str]:
    ident = str(entry["id"])
    return len(ident), ident


def _reaches(page: Sequence[Mapping[str, Any]], cursor: str) -> bool:
    """Does a newest-first page hold every entry after `cursor`: it goes back to the cursor or
    before, or nothing is older (no next page: a short page is not enough, see `next_max_id`)?"""
    return any(not newer(str(e["id"]), cursor) for e in page) or next_max_id(page) is None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


class Feed:
    """One cursor, one page reader, and optionally one stream. Subclasses say what they read."""

    cursor_key: str = ""

    def __init__(self, name: str, config: Config, store: Store, reader: PostReader,
                 streams: Streams | None) -> None:
        self.name, self.config, self.store, self.reader = name, config, store, reader
        self.streams = streams
        self.mode = "streaming" if streams else "polling"
        self.reason = ""  # why a feed that could stream polls
        self.missed = 0  # entries the reconciliation poll found that the stream did not deliver
        self.interval = config.mastodon.poll_interval
        self._stream_retry_at = 0.0
        self._open_failures = 0
        self._quick_drops = 0
        self._suspects: dict[str, float] = {}  # id -> when the stream is too late for it

    # ---- what a feed reads (overridden) ---------------------------------------------------------

    def page(self, min_id: str | None = None, max_id: str | None = None) -> list[Mapping[str, Any]]:
        """Entries after `min_id` and before `max_id` (the newest when both are None)."""
        raise NotImplementedError

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        raise NotImplementedError

    def stream_query(self) -> dict[str, str]:
        """The stream to open, as the URL names it (`stream`, and `tag` for a hashtag)."""
        raise NotImplementedError

    def stream_events(self, name: str, data: Any) -> tuple[list[Event], str | None]:
        """The events of one stream message, and the timeline entry id it is (None: not one)."""
        if name == "update" and isinstance(data, Mapping):
            return self.events(data), str(data["id"])
        return self.change_events(name, data), None

    def change_events(self, name: str, data: Any) -> list[Event]:
        """Edits and deletions, wherever they come from."""
        if name == "status.update" and isinstance(data, Mapping):
            return self.edited(data)
        if name == "delete":
            item = self.store.find_item(str(data))  # the event names the local id, the store has it as ref
            return [PostDeleted("mastodon", item.uri)] if item and item.network == "mastodon" else []
        return []

    def edited(self, status: Mapping[str, Any]) -> list[Event]:
        """The edit of a status, whichever way it came; its time is written down so that the
        tag feed's re-read of the newest page does not hand it on again."""
        post = self.reader.post(status)
        edited_at = entry_time(status, "edited_at")
        if post and edited_at:
            self.store.set_last_edit("mastodon", post.uri, post.author.id, stamp(edited_at))
        return [PostEdited(post)] if post else []

    # ---- the loop -------------------------------------------------------------------------------

    def run(self, emit: Emit, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.streams is not None and time.monotonic() >= self._stream_retry_at:
                self._live(emit, stop)
            else:
                self._set_mode("polling", self.reason)
                self.catch_up(emit)
                stop.wait(self.interval)

    def catch_up(self, emit: Emit) -> list[str]:
        """Every entry after the stored cursor, oldest first; returns the ids read."""
        cursor = self.store.cursor("mastodon", self.cursor_key)
        if cursor is None:
            cursor = SINCE + iso(datetime.now(timezone.utc))
            self.store.set_cursor("mastodon", self.cursor_key, cursor)
            log.info("mastodon %s: first start; reading every entry from now on", self.name)
        if cursor.startswith(SINCE):
            return self._read_since(emit, datetime.fromisoformat(cursor[len(SINCE):]))
        read = []
        while True:
            entries = sorted(self.page(min_id=cursor), key=_order)
            for entry in entries:
                if newer(str(entry["id"]), cursor):
                    cursor = self._handle(emit, entry)
                    read.append(cursor)
            if len(entries) < PAGE:
                return read

    def _read_since(self, emit: Emit, since: datetime) -> list[str]:
        """The entries created at or after `since`: paged back from the newest, then read oldest
        first. The first entry's id replaces the time as the cursor."""
        fresh: list[Mapping[str, Any]] = []
        max_id = None
        while True:
            page = self.page(max_id=max_id)
            entries = sorted(page, key=_order, reverse=True)
            recent = [e for e in entries if (entry_created(e) or since) >= since]
            fresh += recent
            max_id = next_max_id(page)
            if max_id is None or len(recent) < len(entries):
                break
        return [self._handle(emit, entry) for entry in reversed(fresh)]

    def _handle(self, emit: Emit, entry: Mapping[str, Any]) -> str:
        """Emit one polled entry's events and move the cursor to it."""
        self._emit_all(emit, self._readable_events(entry))
        ident = str(entry["id"])
        self.store.set_cursor("mastodon", self.cursor_key, ident)
        return ident

    def _readable_events(self, entry: Mapping[str, Any],
                         read: Callable[[Mapping[str, Any]], list[Event]] | None = None) -> list[Event]:
        """The entry's events (`read`, by default `events`); an entry that cannot be read (a
        field missing or of the wrong type) is logged and skipped, or it would stop the feed at
        the same place on every retry. Network and store errors still propagate: the entry is
        then read again."""
        try:
            return (read or self.events)(entry)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("mastodon %s: skipping entry %s, which cannot be read (%s: %s)", self.name,
                        entry.get("id"), type(e).__name__, e)
            return []

    def _live(self, emit: Emit, stop: threading.Event) -> None:
        assert self.streams is not None
        try:
            connection = self.streams.open(**self.stream_query())
        except Exception as e:  # noqa: BLE001 - refused at any layer (TCP, TLS, HTTP): poll instead
            self._open_failures += 1
            self._demote(f"the stream could not be opened ({_describe(e)})",
                         min(STREAM_RETRY_AFTER, REOPEN_FIRST * 2 ** (self._open_failures - 1)))
            return
        self._open_failures = 0
        # What a poll found while an earlier connection was dying happened before this one
        # opened: this stream cannot bring it, and missing it says nothing about this stream.
        self._suspects.clear()
        started, received = time.monotonic(), False
        with connection:
            self._set_mode("streaming", "")
            self.catch_up(emit)  # after the stream opened: nothing falls between the two
            next_poll = time.monotonic() + self.interval
            while not stop.is_set():
                try:
                    for name, data in events(connection.recv_batch(timeout=0.5)):
                        self._on_stream(emit, name, data)
                        received = True
                except StreamRefused as e:
                    self._demote(f"the server refused the subscription ({e})")
                    return
                except (ConnectionClosed, OSError) as e:
                    log.info("mastodon %s: stream closed (%s); reconnecting", self.name, e or "end of stream")
                    break
                if self._late_entries():
                    return
                if time.monotonic() >= next_poll:
                    self._reconcile(emit)
                    next_poll = time.monotonic() + self.interval
        # A stream that keeps closing before saying anything: back off instead of hammering.
        flapping = not received and time.monotonic() - started < QUICK_DROP
        self._quick_drops = self._quick_drops + 1 if flapping else 0
        if self._quick_drops:
            stop.wait(min(30.0, 0.25 * 2 ** self._quick_drops))

    def _on_stream(self, emit: Emit, name: str, data: Any) -> None:
        """Everything the stream brings is handled (the store makes a second sighting a no-op,
        and a federated post can come with an id older than the cursor); the cursor only moves
        forward."""
        try:
            found, ident = self.stream_events(name, data)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("mastodon %s: skipping a stream message that cannot be read (%s: %s)",
                        self.name, type(e).__name__, e)
            return
        if ident is not None:
            self._suspects.pop(ident, None)
        self._emit_all(emit, found)
        current = self.store.cursor("mastodon", self.cursor_key)
        if ident is not None and (current is None or current.startswith(SINCE) or newer(ident, current)):
            self.store.set_cursor("mastodon", self.cursor_key, ident)

    def _reconcile(self, emit: Emit) -> None:
        """Poll while streaming; what the poll reads first, the stream has so far missed."""
        deadline = time.monotonic() + RECONCILE_GRACE
        for ident in self.catch_up(emit):
            self._suspects[ident] = deadline

    def _late_entries(self) -> bool:
        """Entries the poll found and the stream did not bring in time: count them, demote."""
        now = time.monotonic()
        late = [ident for ident, deadline in self._suspects.items() if deadline <= now]
        if not late:
            return False
        self.missed += len(late)
        self._demote(f"the stream missed {len(late)} entries the poll found ({self.missed} in all)")
        return True

    def _demote(self, why: str, retry_in: float = STREAM_RETRY_AFTER) -> None:
        self._stream_retry_at = time.monotonic() + retry_in
        self._suspects.clear()
        log.warning("mastodon %s: %s; polling every %g s, the stream is tried again in %.0f s",
                    self.name, why, self.interval, retry_in)
        self._set_mode("polling", why)

    def _set_mode(self, mode: str, reason: str) -> None:
        if (mode, reason) != (self.mode, self.reason):
            if mode == "streaming":
                log.info("mastodon %s: streaming", self.name)
            self.mode, self.reason = mode, reason
            self.store.source_alive("mastodon", self.name, mode, reason=reason, missed=self.missed)

    @staticmethod
    def _emit_all(emit: Emit, found: list[Event]) -> None:
        for event in found:
            emit(event)


def entry_created(entry: Mapping[str, Any]) -> datetime | None:
    """The entry's creation time; None when it cannot be read (the entry is then read, and
    skipped there with a warning, rather than stop the feed)."""
    return entry_time(entry, "created_at")


def entry_time(entry: Mapping[str, Any], key: str) -> datetime | None:
    """A time field of an entry (`created_at`, `edited_at`); None when absent or unreadable."""
    value = entry.get(key)
    if value is None:
        return None
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(
            str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def has_tag(status: Mapping[str, Any], hashtag: str) -> bool:
    """Does the status carry the hashtag, as its `tags` list says?"""
    names = {str(t.get("name", "")).casefold() for t in status.get("tags") or () if isinstance(t, Mapping)}
    return hashtag.casefold() in names


def stamp(t: datetime) -> str:
    """A time as the store keeps an edit's: UTC, to the microsecond (two edits a second apart
    or less are two edits)."""
    return t.astimezone(timezone.utc).isoformat()


def tag_page(retry: Retrier, client: Mastodon, hashtag: str, min_id: str | None,
             max_id: str | None) -> list[Mapping[str, Any]]:
    """One page of a server's tag timeline, as Mastodon.py returns it (with the Link header's
    next page, see `next_max_id`); a 404 is an empty page (GoToSocial answers "tag was not found"
    until some post used the tag)."""
    try:
        return retry(client.timeline_hashtag, hashtag, min_id=min_id, max_id=max_id, limit=PAGE)
    except PermanentError as e:
        if "not found" in str(e):
            return []
        raise


def next_max_id(page: Sequence[Mapping[str, Any]]) -> str | None:
    """Where the next (older) page of a timeline starts, None after the last one.

    The `Link: <...>; rel="next"` header says, and all three families send it on every page that
    is not empty: Mastodon.py keeps its max_id as `_pagination_next`. Its URL may drop this
    request's filters (GoToSocial's keeps `limit` alone, Mastodon's drops `remote`); only its
    max_id is taken, the next request repeats this one's parameters. It is the only safe end
    test: GoToSocial pages before it filters (internal/processing/timeline/tag.go), so a short
    page can come before older ones, and its link then points past the last entry shown. From a
    server that sends no Link header, the last entry's id when the page is full."""
    following = getattr(page, "_pagination_next", None)
    if following and following.get("max_id") is not None:
        return str(following["max_id"])
    if page and getattr(page, "_pagination_prev", None) is None and len(page) >= PAGE:
        return str(page[-1]["id"])
    return None


class TagFeed(Feed):
    """Public posts with the hashtag, from the home server's tag timeline and hashtag stream."""

    cursor_key = "tag"

    def __init__(self, config: Config, store: Store, reader: PostReader, client: Mastodon,
                 retry: Retrier, streams: Streams | None) -> None:
        super().__init__("tag", config, store, reader, streams)
        self.client, self.retry = client, retry
        self._reread_refs: set[str] = set()  # items the timeline stopped showing, read again

    def page(self, min_id: str | None = None, max_id: str | None = None) -> list[Mapping[str, Any]]:
        return tag_page(self.retry, self.client, self.config.hashtag, min_id, max_id)

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        post = self.reader.post(entry)
        edited_at = entry_time(entry, "edited_at")
        if post and edited_at:  # first read as it stands: that edit is no news
            self.store.set_last_edit("mastodon", post.uri, post.author.id, stamp(edited_at))
        return [PostSeen(post)] if post else []

    def stream_query(self) -> dict[str, str]:
        return {"stream": "hashtag", "tag": self.config.hashtag}

    def catch_up(self, emit: Emit) -> list[str]:
        """The new entries, then the edits the newest page shows. One request a poll, as with
        `min_id` paging alone: the newest page holds every new entry when it reaches back to
        the cursor; only after more than a page of them are they paged from the cursor."""
        start = self.store.cursor("mastodon", EDITS_SINCE)
        if start is None:
            start = stamp(datetime.now(timezone.utc))
            self.store.set_cursor("mastodon", EDITS_SINCE, start)
        cursor = self.store.cursor("mastodon", self.cursor_key)
        if cursor is None or cursor.startswith(SINCE):  # no entry yet: read from that time first
            read = super().catch_up(emit)
            newest = self.page()
        else:
            newest = self.page()
            read = ([self._handle(emit, entry) for entry in sorted(newest, key=_order)
                     if newer(str(entry["id"]), cursor)] if _reaches(newest, cursor)
                    else super().catch_up(emit))
        for entry in newest:
            if self._unseen_edit(entry, start):
                self._emit_all(emit, self._readable_events(entry, self.edited))
        for item in self._vanished(newest, read):
            self._emit_all(emit, self._reread(item))
        return read

    def _vanished(self, newest: Sequence[Mapping[str, Any]], read: list[str]) -> list[Item]:
        """The open public items within the newest page's span that it no longer shows: an edit
        removed the hashtag, or the post is gone, and no stream told. Each is read once (a
        status the server leaves out of the timeline for another reason is then known), the
        newest first and at most `REREADS_PER_POLL` a poll, whatever a server's page lacks."""
        floor = min(newest, key=_order) if next_max_id(newest) is not None else None
        created = entry_created(floor) if floor else None
        shown = {str(e["id"]) for e in newest} | set(read)  # read: paged after the newest page
        gone = [item for item in self.store.open_public_items(
                    "mastodon", iso(created - VANISH_SLACK) if created else None)
                if item.ref not in shown and item.ref not in self._reread_refs
                and (floor is None or newer(item.ref, str(floor["id"])))]
        return sorted(gone, key=lambda i: (len(i.ref), i.ref), reverse=True)[:REREADS_PER_POLL]

    def _reread(self, item: Item) -> list[Event]:
        """What became of an item the tag timeline no longer shows: deleted, or edited."""
        self._reread_refs.add(item.ref)
        try:
            status = self.retry(self.client.status, item.ref)
        except PermanentError as e:
            if "not found" in str(e):
                return [PostDeleted("mastodon", item.uri)]
            log.info("mastodon %s: cannot read %s again (%s)", self.name, item.uri, e)
            return []
        if has_tag(status, self.config.hashtag):
            return []  # still tagged: left out of the timeline for another reason
        return self._readable_events(status, self.edited)

    def _unseen_edit(self, entry: Mapping[str, Any], start: str) -> bool:
        """Was the entry edited since the store last read an edit of it, and since the bot first
        read this timeline (not to take the edits of posts from before as new ones)?

        An edit keeps a status's place (ids follow creation): one that adds the hashtag to an
        older status puts it into the timeline there, so this finds it only while that place
        is within the newest page (the `PAGE` newest tagged statuses); the streams find any. An
        edit removing the hashtag takes the status out of the timeline: the streams bring it,
        or the `update` notification of a status the bot boosted (`MentionFeed`)."""
        edited_at = entry_time(entry, "edited_at")
        if edited_at is None or entry.get("reblog"):
            return False
        seen = self.store.last_edit("mastodon", str(entry.get("uri")))
        return stamp(edited_at) > max(start, seen or "")


class MentionFeed(Feed):
    """Mentions of the bot (answers to prompts among them), and, live, the home timeline's tagged
    posts, edits and deletions: where the followed hashtag comes in, and the only way to see
    followers' non-public tagged posts."""

    cursor_key = "notifications"

    def __init__(self, config: Config, store: Store, reader: PostReader, client: Mastodon,
                 retry: Retrier, streams: Streams | None) -> None:
        super().__init__("mentions", config, store, reader, streams)
        self.client, self.retry = client, retry

    def page(self, min_id: str | None = None, max_id: str | None = None) -> list[Mapping[str, Any]]:
        return self.retry(self.client.notifications, types=NOTIFIED, min_id=min_id, max_id=max_id,
                          limit=PAGE)  # as Mastodon.py returns it: with its Link header's pages

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        if entry.get("type") not in NOTIFIED or not entry.get("status"):
            return []
        if entry["type"] == "update":  # a status the bot boosted was edited
            return self.edited(entry["status"])
        post = self.reader.post(entry["status"])
        return [PostSeen(post)] if post else []

    def stream_query(self) -> dict[str, str]:
        return {"stream": "user"}

    def stream_events(self, name: str, data: Any) -> tuple[list[Event], str | None]:
        if name == "notification" and isinstance(data, Mapping):
            return self.events(data), str(data["id"])
        if name == "update" and isinstance(data, Mapping):  # the home timeline: only tagged posts
            post = self.reader.post(data) if has_tag(data, self.config.hashtag) else None
            return ([PostSeen(post)] if post else []), None
        return self.change_events(name, data), None


class DiscoveryFeed(Feed):
    """Another server's public tag timeline, read without a token; each new post is resolved on
    the home server first (the bot can only act on local copies), and one already known is one
    item: the uri is the same everywhere."""

    def __init__(self, instance: str, config: Config, store: Store, reader: PostReader,
                 home: Mastodon, retry: Retrier) -> None:
        super().__init__(f"discovery {instance}", config, store, reader, streams=None)
        self.cursor_key = f"discovery:{instance}"
        self.remote = make_client(instance)
        self.home, self.retry = home, retry
        self.resolves = 0  # searches made at home (requests against the bot's budget)

    def page(self, min_id: str | None = None, max_id: str | None = None) -> list[Mapping[str, Any]]:
        try:
            return tag_page(self.retry, self.remote, self.config.hashtag, min_id, max_id)
        except MastodonUnauthorizedError:
            raise PermanentError(f"{self.name}: this server shows its tag timeline only to its own "
                                 "users (GoToSocial does); remove it from "
                                 "mastodon.discovery_instances, its posts reach the home server "
                                 "when people there follow their authors") from None

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        local = self.local_status(entry)
        post = self.reader.post(local) if local else None
        return [PostSeen(post)] if post else []

    def local_status(self, entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The home server's copy of a public, new-to-the-store entry (None for the rest)."""
        if entry.get("reblog") or entry.get("visibility") != "public":
            return None
        if self.store.item("mastodon", entry["uri"]) is not None:
            return None
        self.resolves += 1
        found = self.retry(self.home.search_v2, entry.get("url") or entry["uri"], resolve=True,
                           result_type="statuses")
        local = next((s for s in found["statuses"] if s["uri"] == entry["uri"]), None)
        if local is None:
            log.info("mastodon %s: could not resolve %s on the home server", self.name, entry["uri"])
        return local
