"""The listeners: the hashtag, the bot's mentions, and the public tag timelines of other servers.

Every feed works the same way: catch up from the stored cursor (`min_id` paging, oldest first)
and then go live. Live is the streaming API when the feed has a stream and the server serves it,
over SSE (Mastodon) or, when SSE is refused, WebSocket (GoToSocial, and Mastodon too); otherwise,
or when `streaming = false`, the feed polls by catching up again every `poll_interval`. A dropped
stream reconnects and catches up first, so nothing is lost; entries at or below the cursor are
skipped, so nothing is repeated.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from mastodon import Mastodon, StreamListener
from mastodon.errors import MastodonAPIError, MastodonNetworkError

from bot.adapter import Emit
from bot.config import Config
from bot.mastodon.client import Retrier, make_client
from bot.mastodon.reader import PostReader
from bot.model import Event, PostDeleted, PostEdited, PostSeen
from bot.store import Store

log = logging.getLogger("numpolville.mastodon")

PAGE = 40
STREAM_READ_TIMEOUT = 90.0  # Mastodon sends a heartbeat every 15 s; silence this long is a dead stream
STREAM_RETRY_AFTER = 300.0  # after a failed connection, poll this long before trying the stream again
QUICK_DROP = 5.0


def newer(a: str, b: str | None) -> bool:
    """Is id `a` after id `b`? Mastodon ids are numeric strings, GoToSocial's are ULIDs: ordering
    by (length, text) is right for both."""
    return b is None or (len(a), a) > (len(b), b)


def _refused(error: BaseException | None) -> bool:
    """The server answered the stream request with an error status (no such stream, streaming
    off): Mastodon.py says so with a MastodonNetworkError, while an unreachable server raises
    requests' own errors."""
    return isinstance(error, (MastodonNetworkError, MastodonAPIError))


class _Queue(StreamListener):
    """Hands every stream event, and the stream's opening and end, to the feed's thread."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.response: Any = None  # the SSE response or the WebSocket handle: what close() ends
        self.aborted: BaseException | None = None

    def handle_stream(self, response: Any) -> None:
        self.response = response
        self.events.put(("open", None))
        super().handle_stream(response)

    def on_any_event(self, name: str, data: Any = None, for_stream: str | None = None) -> None:
        self.events.put((name, data))

    def on_abort(self, err: BaseException) -> None:
        self.aborted = err

    def on_websocket_error(self, error: BaseException, for_stream: Any = None) -> None:
        self.aborted = error
        self.close()  # a refused subscription: the feed decides what next

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


class Feed:
    """One cursor, one page reader, and optionally one stream. Subclasses say what they read."""

    cursor_key: str = ""
    mode: str = "polling"

    def __init__(self, name: str, config: Config, store: Store, reader: PostReader,
                 streaming: bool) -> None:
        self.name, self.config, self.store, self.reader = name, config, store, reader
        self.streaming = streaming
        self.mode = "streaming" if streaming else "polling"
        self.interval = config.mastodon.poll_interval
        self._stream_retry_at = 0.0
        self._quick_drops = 0
        self.transport = "sse"

    # ---- what a feed reads (overridden) ---------------------------------------------------------

    def page(self, min_id: str | None) -> list[Mapping[str, Any]]:
        """Entries after `min_id` (the newest ones when None), in any order."""
        raise NotImplementedError

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        raise NotImplementedError

    def open_stream(self, listener: StreamListener, websocket: Any = None) -> None:
        """Read the feed's stream into `listener`: over SSE, blocking; over the given WebSocket
        handle, by subscribing (the handle's thread reads)."""
        raise NotImplementedError

    def open_websocket(self) -> Any:
        """A WebSocket streaming connection to the server (feeds with a stream have a client)."""
        raise NotImplementedError

    def stream_events(self, name: str, data: Any) -> tuple[list[Event], str | None]:
        """The events of one stream message, and the cursor it moves to (None: unchanged)."""
        if name == "update":
            return self.events(data), str(data["id"])
        return self.change_events(name, data), None

    def change_events(self, name: str, data: Any) -> list[Event]:
        """Edits and deletions, wherever they come from."""
        if name == "status.update":
            post = self.reader.post(data)
            return [PostEdited(post)] if post else []
        if name == "delete":
            item = self.store.find_item(str(data))  # the event names the local id, the store has it as ref
            return [PostDeleted("mastodon", item.uri)] if item and item.network == "mastodon" else []
        return []

    # ---- the loop -------------------------------------------------------------------------------

    def run(self, emit: Emit, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.streaming and time.monotonic() >= self._stream_retry_at:
                self._live(emit, stop)
            else:
                self._set_mode("polling")
                self.catch_up(emit)
                stop.wait(self.interval)

    def catch_up(self, emit: Emit) -> None:
        """Every entry after the stored cursor, oldest first; a first start begins at the newest."""
        cursor = self.store.cursor("mastodon", self.cursor_key)
        if cursor is None:
            newest = max((str(e["id"]) for e in self.page(None)), key=lambda i: (len(i), i), default="0")
            self.store.set_cursor("mastodon", self.cursor_key, newest)
            log.info("mastodon %s: first start, reading from now on (cursor %s)", self.name, newest)
            return
        while True:
            entries = sorted(self.page(cursor), key=lambda e: (len(str(e["id"])), str(e["id"])))
            for entry in entries:
                if newer(str(entry["id"]), cursor):
                    self._emit_all(emit, self._readable_events(entry))
                    cursor = str(entry["id"])
                    self.store.set_cursor("mastodon", self.cursor_key, cursor)
            if len(entries) < PAGE:
                return

    def _readable_events(self, entry: Mapping[str, Any]) -> list[Event]:
        """The entry's events; an entry that cannot be read (a field missing or of the wrong
        type) is logged and skipped, or it would stop the feed at the same place on every retry.
        Network and store errors still propagate: the entry is then read again."""
        try:
            return self.events(entry)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("mastodon %s: skipping entry %s, which cannot be read (%s: %s)", self.name,
                        entry.get("id"), type(e).__name__, e)
            return []

    def _live(self, emit: Emit, stop: threading.Event) -> None:
        listener = _Queue()
        threading.Thread(target=self._read_stream, args=(listener,), daemon=True,
                         name=f"mastodon-{self.name}-sse").start()
        started, received = time.monotonic(), False
        try:
            name, data = listener.events.get()
            if name != "open":
                if isinstance(data, BaseException) and not _refused(data):
                    raise data  # the server is unreachable: the supervisor backs off
                if self.transport == "sse":
                    log.info("mastodon %s: SSE refused (%s); trying WebSocket", self.name, data)
                    self.transport = "websocket"
                else:
                    self.transport = "sse"
                    self._stream_unavailable(data)
                return
            self._set_mode("streaming")
            self.catch_up(emit)  # after the stream opened: nothing falls between the two
            while not stop.is_set():
                try:
                    name, data = listener.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if name == "closed" and self.transport == "websocket" and isinstance(
                        data, MastodonAPIError):  # the server refused the subscription itself
                    self.transport = "sse"
                    self._stream_unavailable(data)
                    return
                if name == "closed":
                    log.info("mastodon %s: stream closed (%s); reconnecting", self.name,
                             data or "end of stream")
                    break
                self._on_stream(emit, name, data)
                received = True
        finally:
            listener.close()
        # A stream that keeps closing before saying anything: back off instead of hammering.
        flapping = not received and time.monotonic() - started < QUICK_DROP
        self._quick_drops = self._quick_drops + 1 if flapping else 0
        if self._quick_drops:
            stop.wait(min(30.0, 0.25 * 2 ** self._quick_drops))

    def _read_stream(self, listener: _Queue) -> None:
        try:
            if self.transport == "websocket":
                handle = listener.response = self.open_websocket()
                self.open_stream(listener, handle)
                listener.events.put(("open", None))
                handle.join()
                if listener.aborted is not None:
                    raise listener.aborted
            else:
                self.open_stream(listener)
            listener.events.put(("closed", None))
        except Exception as e:  # noqa: BLE001 - reported to the feed's thread, which decides
            listener.events.put(("closed", e))

    def _on_stream(self, emit: Emit, name: str, data: Any) -> None:
        events, cursor = self.stream_events(name, data)
        current = self.store.cursor("mastodon", self.cursor_key)
        if cursor is not None and not newer(cursor, current):
            return  # already read by the catch-up
        self._emit_all(emit, events)
        if cursor is not None:
            self.store.set_cursor("mastodon", self.cursor_key, cursor)

    def _stream_unavailable(self, why: object) -> None:
        self._stream_retry_at = time.monotonic() + STREAM_RETRY_AFTER
        log.warning("mastodon %s: no stream (%s); polling every %g s", self.name, why, self.interval)

    def _set_mode(self, mode: str) -> None:
        if mode != self.mode:
            log.info("mastodon %s: %s", self.name, mode if mode == "streaming"
                     else f"polling every {self.interval:g} s")
        self.mode = mode

    @staticmethod
    def _emit_all(emit: Emit, events: list[Event]) -> None:
        for event in events:
            emit(event)


class HomeFeed(Feed):
    """A feed of the bot's home server, read with the bot's token."""

    def __init__(self, name: str, config: Config, store: Store, reader: PostReader, client: Mastodon,
                 retry: Retrier) -> None:
        super().__init__(name, config, store, reader, config.mastodon.streaming)
        self.client, self.retry = client, retry

    def open_websocket(self) -> Any:
        return self.client.stream_open_websocket(timeout=STREAM_READ_TIMEOUT)


class TagFeed(HomeFeed):
    """Public posts with the hashtag, from the home server's hashtag stream or tag timeline."""

    cursor_key = "tag"

    def __init__(self, config: Config, store: Store, reader: PostReader, client: Mastodon,
                 retry: Retrier) -> None:
        super().__init__("tag", config, store, reader, client, retry)

    def page(self, min_id: str | None) -> list[Mapping[str, Any]]:
        return list(self.retry(self.client.timeline_hashtag, self.config.hashtag, min_id=min_id,
                               limit=PAGE))

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        post = self.reader.post(entry)
        return [PostSeen(post)] if post else []

    def open_stream(self, listener: StreamListener, websocket: Any = None) -> None:
        self.client.stream_hashtag(self.config.hashtag, listener, timeout=STREAM_READ_TIMEOUT,
                                   websocket_handle=websocket)


class MentionFeed(HomeFeed):
    """Mentions of the bot (answers to prompts among them), and, live, the home timeline's tagged
    posts, edits and deletions: the only way to see followers' non-public tagged posts."""

    cursor_key = "notifications"

    def __init__(self, config: Config, store: Store, reader: PostReader, client: Mastodon,
                 retry: Retrier) -> None:
        super().__init__("mentions", config, store, reader, client, retry)

    def page(self, min_id: str | None) -> list[Mapping[str, Any]]:
        return list(self.retry(self.client.notifications, types=["mention"], min_id=min_id,
                               limit=PAGE))

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        if entry.get("type") != "mention" or not entry.get("status"):
            return []
        post = self.reader.post(entry["status"])
        return [PostSeen(post)] if post else []

    def open_stream(self, listener: StreamListener, websocket: Any = None) -> None:
        self.client.stream_user(listener, timeout=STREAM_READ_TIMEOUT, websocket_handle=websocket)

    def stream_events(self, name: str, data: Any) -> tuple[list[Event], str | None]:
        if name == "notification":
            return self.events(data), str(data["id"])
        if name == "update":  # the home timeline: only tagged posts matter, the tag feed has the rest
            tags = {str(t["name"]).casefold() for t in data.get("tags") or ()}
            post = self.reader.post(data) if self.config.hashtag.casefold() in tags else None
            return ([PostSeen(post)] if post else []), None
        return self.change_events(name, data), None


class DiscoveryFeed(Feed):
    """Another server's public tag timeline, read without a token; each new post is resolved on
    the home server first (the bot can only act on local copies), and one already known is one
    item: the uri is the same everywhere."""

    def __init__(self, instance: str, config: Config, store: Store, reader: PostReader,
                 home: Mastodon, retry: Retrier) -> None:
        super().__init__(f"discovery {instance}", config, store, reader, streaming=False)
        self.cursor_key = f"discovery:{instance}"
        self.remote = make_client(instance)
        self.home, self.retry = home, retry

    def page(self, min_id: str | None) -> list[Mapping[str, Any]]:
        return list(self.retry(self.remote.timeline_hashtag, self.config.hashtag, min_id=min_id,
                               limit=PAGE))

    def events(self, entry: Mapping[str, Any]) -> list[Event]:
        if entry.get("reblog") or entry.get("visibility") != "public":
            return []
        if self.store.item("mastodon", entry["uri"]) is not None:
            return []
        found = self.retry(self.home.search_v2, entry.get("url") or entry["uri"], resolve=True,
                           result_type="statuses")
        local = next((s for s in found["statuses"] if s["uri"] == entry["uri"]), None)
        if local is None:
            log.info("mastodon %s: could not resolve %s on the home server", self.name, entry["uri"])
            return []
        post = self.reader.post(local)
        return [PostSeen(post)] if post else []
