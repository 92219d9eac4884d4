"""Polling sources for `source = "search"` (and back-fill): `app.bsky.feed.searchPosts` for the tag,
and the bot's notifications (replies, mentions) for the answers.

Each keeps as cursor the newest `indexedAt` it handled (with the uri, to break ties): a poll pages
back until it meets that point, then handles what is new oldest first.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from atproto_client.models.utils import get_model_as_dict

from bot.adapter import Emit
from bot.bluesky.convert import split_uri
from bot.bluesky.detect import POST
from bot.bluesky.ingest import Ingest
from bot.store import Store

MAX_PAGES = 10


class _Poller(ABC):
    mode = "polling"
    reason = ""
    name: str

    def __init__(self, ingest: Ingest, store: Store, interval: float) -> None:
        self.ingest, self.store, self.interval = ingest, store, interval

    @abstractmethod
    def pages(self, cursor: str | None) -> tuple[list[Any], str | None]:
        """One page of results (newest first) and the next page's cursor."""

    def wanted(self, item: Any) -> bool:
        return True

    def run(self, emit: Emit, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll(emit)
            stop.wait(self.interval)

    def poll(self, emit: Emit) -> None:
        seen = self.store.cursor("bluesky", self.name) or ""
        fresh = [p for p in self._since(seen) if self.wanted(p)]
        for item in reversed(fresh):
            did, _, rkey = split_uri(item.uri)
            hit = self.ingest.rules.judge(did, "create", POST, rkey, item.cid,
                                          get_model_as_dict(item.record))
            if hit:
                self.ingest.handle(hit, emit)
            self.store.set_cursor("bluesky", self.name, _mark(item))

    def _since(self, seen: str) -> Iterator[Any]:
        page_cursor = None
        for _ in range(MAX_PAGES):
            items, page_cursor = self.pages(page_cursor)
            for item in items:
                if _mark(item) <= seen:
                    return
                yield item
            if not page_cursor:
                return


def _mark(item: Any) -> str:
    return f"{item.indexed_at} {item.uri}"


class SearchSource(_Poller):
    name = "search"

    def pages(self, cursor: str | None) -> tuple[list[Any], str | None]:
        res = self.ingest.client.app.bsky.feed.search_posts(
            {"q": f"#{self.ingest.rules.tag}", "sort": "latest", "limit": 100, "cursor": cursor})
        return list(res.posts), res.cursor


class NotificationSource(_Poller):
    name = "notifications"

    def pages(self, cursor: str | None) -> tuple[list[Any], str | None]:
        res = self.ingest.client.app.bsky.notification.list_notifications(
            {"limit": 100, "cursor": cursor})
        return list(res.notifications), res.cursor

    def wanted(self, item: Any) -> bool:
        return item.reason in ("reply", "mention")
