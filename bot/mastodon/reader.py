"""Turns statuses into Posts with what only the home server and the store know: the bot's ids, the
uri of the prompt a reply answers, and whether the author follows the bot.

Shared by every source and by the adapter (which teaches it the prompts it has just posted).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from mastodon import Mastodon

from bot.adapter import PermanentError
from bot.config import Config
from bot.mastodon.client import Retrier
from bot.mastodon.convert import to_post
from bot.model import Post
from bot.store import Store

FOLLOWER_TTL = 300.0
CACHE_SIZE = 2048


class BoundedCache:
    """A small thread-safe LRU dict with an optional time-to-live per entry."""

    def __init__(self, size: int = CACHE_SIZE, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl, self.clock = size, ttl, clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or (self.ttl is not None and self.clock() - entry[0] > self.ttl):
                return None
            self._data.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = (self.clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class PostReader:
    def __init__(self, config: Config, store: Store, client: Mastodon, retry: Retrier) -> None:
        self.config, self.store, self.client, self.retry = config, store, client, retry
        self.bot_ids: frozenset[str] = frozenset()
        self.prompt_uris = BoundedCache()  # prompt local id -> uri, before the store knows it
        self.follows = BoundedCache(ttl=FOLLOWER_TTL)  # account id -> follows the bot

    def post(self, status: Mapping[str, Any]) -> Post | None:
        """The Post for a status (None for a boost), with `follows_bot` set when it matters."""
        to_bot = str(status.get("in_reply_to_account_id")) in self.bot_ids
        post = to_post(status, bot_ids=self.bot_ids,
                       parent_uri=lambda local_id: self.parent_uri(local_id, to_bot=to_bot))
        if post is None or not self._needs_follower_check(post):
            return post
        return replace(post, author=replace(post.author, follows_bot=self.follows_bot(post.author.id)))

    def remember_prompt(self, local_id: str, uri: str) -> None:
        self.prompt_uris.put(local_id, uri)

    def parent_uri(self, local_id: str, *, to_bot: bool = False) -> str | None:
        """The uri of a reply's parent when it is one of the bot's prompts (the only parents the
        core looks at); None otherwise, which costs no request unless the reply answers the bot
        (`to_bot`) about a prompt the store does not know yet."""
        uri = self.prompt_uris.get(local_id)
        if uri is not None and to_bot and self.store.item_by_prompt("mastodon", uri) is None:
            uri = None  # posted, but its result not written down (disk full): find it below
        if uri is None:
            item = self.store.item_by_prompt_ref("mastodon", local_id)
            uri = item.prompt_uri if item else None
        if uri is None and to_bot:
            uri = self._prompt_posted_but_not_stored(local_id)
        return uri

    def _prompt_posted_but_not_stored(self, local_id: str) -> str | None:
        """A prompt is on the server before the store hears of it (the effect worker writes its
        uri after the call returns; a crash in between leaves the intent pending until the next
        start). An answer read in that window would look like no answer at all and be lost, so
        ask the server: a bot status replying to a prompted item's post is that item's prompt."""
        try:
            parent = self.retry(self.client.status, local_id)
        except PermanentError:
            return None  # the parent is gone (a deleted prompt): not an answer any more
        post_ref = parent.get("in_reply_to_id")
        item = self.store.find_item(str(post_ref)) if post_ref else None
        if item is None or item.network != "mastodon":
            return None
        if item.prompt_uri is None and item.state == "prompted":
            self.store.prompt_found("mastodon", item.uri, parent["uri"], str(parent["id"]))
        elif item.prompt_uri != parent["uri"]:  # not its prompt (the worker may just have stored it)
            return None
        self.remember_prompt(str(parent["id"]), parent["uri"])
        return str(parent["uri"])

    def follows_bot(self, account_id: str) -> bool:
        cached = self.follows.get(account_id)
        if cached is None:
            relationships = self.retry(self.client.account_relationships, [account_id])
            cached = bool(relationships and relationships[0]["followed_by"])
            self.follows.put(account_id, cached)
        return bool(cached)

    def _needs_follower_check(self, post: Post) -> bool:
        """Only a tagged post by someone else under the `followers` policy, not mentioning the bot."""
        return (self.config.policy.prompt == "followers" and post.has_tag(self.config.hashtag)
                and not post.mentions_bot and post.author.id not in self.bot_ids
                and not post.author.refuses_bots())
