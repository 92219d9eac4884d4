"""`MastodonAdapter`: the bot on one home server (Mastodon, GoToSocial, Akkoma, Pleroma).

It listens through the feeds in `sources.py` and carries out the core's effects. Every effect is
idempotent: a prompt or reply carries an `Idempotency-Key` derived from the post (a retry after a
crash posts nothing new), and boosting, unboosting and favouriting are idempotent on the server.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from bot.adapter import PermanentError, Source
from bot.config import Config
from bot.mastodon.client import Retrier, make_client
from bot.mastodon.reader import PostReader
from bot.mastodon.sources import DiscoveryFeed, MentionFeed, TagFeed
from bot.messages import message
from bot.model import Acknowledge, Action, Boost, Post, Prompt, Reply, Unboost, Visibility
from bot.store import Store

log = logging.getLogger("numpolville.mastodon")
DEFAULT_CHARACTER_LIMIT = 500


class MastodonAdapter:
    network = "mastodon"

    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self.stop = threading.Event()
        self.retry = Retrier(stop=self.stop)
        self.client = make_client(config.mastodon.api_base_url, config.mastodon.access_token)
        self.reader = PostReader(config, store, self.client, self.retry)
        self.max_characters = DEFAULT_CHARACTER_LIMIT

    # ---- Adapter --------------------------------------------------------------------------------

    def connect(self) -> frozenset[str]:
        me = self.retry(self.client.account_verify_credentials)
        self.reader.bot_ids = frozenset({str(me["id"])})
        self.max_characters = self._max_characters()
        if self.config.mastodon.set_bot_flag and not me.get("bot"):
            self.retry(self.client.account_update_credentials, bot=True)
        log.info("mastodon: signed in as @%s on %s (%d characters per post)", me["acct"],
                 self.config.mastodon.api_base_url, self.max_characters)
        return self.reader.bot_ids

    def sources(self) -> list[Source]:
        feeds: list[Source] = [TagFeed(self.config, self.store, self.reader, self.client, self.retry),
                               MentionFeed(self.config, self.store, self.reader, self.client, self.retry)]
        feeds += [DiscoveryFeed(instance, self.config, self.store, self.reader, self.client, self.retry)
                  for instance in self.config.mastodon.discovery_instances]
        return feeds

    def perform(self, action: Action) -> str | None:
        if isinstance(action, Prompt):
            status = self._reply(action.post, message(self.config, action), action.visibility, "prompt")
            self.reader.remember_prompt(str(status["id"]), status["uri"])
            return f"{status['uri']} {status['id']}"
        if isinstance(action, Reply):
            status = self._reply(action.post, message(self.config, action), action.visibility,
                                 f"reply:{action.text_key}")
            return str(status["id"])
        if isinstance(action, Boost):
            return str(self.retry(self.client.status_reblog, action.ref)["id"])
        if isinstance(action, Unboost):
            try:
                self.retry(self.client.status_unreblog, action.ref)
            except PermanentError:
                log.info("mastodon: %s is gone, and its boost with it", action.uri)
            return None
        if isinstance(action, Acknowledge):
            self.retry(self.client.status_favourite, action.post.ref)
            return None
        raise PermanentError(f"not a Mastodon effect: {type(action).__name__}")

    def post_thread(self, texts: list[str], key: str) -> list[str]:
        """The digest as a public thread. Each post's idempotency key comes from `key` and its
        place, so a retry after a crash continues the thread instead of starting a second one."""
        ids: list[str] = []
        for n, text in enumerate(texts):
            digest = hashlib.sha256(f"thread:{key}:{n}".encode()).hexdigest()[:32]
            status = self.retry(self.client.status_post, self._fit(text),
                                in_reply_to_id=ids[-1] if ids else None, visibility="public",
                                idempotency_key=digest, language=self.config.language)
            ids.append(str(status["id"]))
        return ids

    def close(self) -> None:
        self.stop.set()
        self.client.session.close()

    # ---- helpers --------------------------------------------------------------------------------

    def _reply(self, post: Post, text: str, visibility: Visibility, purpose: str) -> Any:
        body = self._fit(f"@{post.author.handle} {text}")
        key = hashlib.sha256(f"{purpose}:{post.uri}".encode()).hexdigest()[:32]
        return self.retry(self.client.status_post, body, in_reply_to_id=post.ref,
                          visibility=visibility, idempotency_key=key,
                          language=self.config.language)

    def _fit(self, text: str) -> str:
        return text if len(text) <= self.max_characters else text[: self.max_characters - 1] + "…"

    def _max_characters(self) -> int:
        """The server's limit: instance v2, else v1 (Mastodon), else Pleroma's `max_toot_chars`."""
        for read in (lambda: self.client.instance_v2()["configuration"]["statuses"]["max_characters"],
                     lambda: self.client.instance_v1()["configuration"]["statuses"]["max_characters"],
                     lambda: self.client.instance_v1()["max_toot_chars"]):
            try:
                return int(read())
            except Exception:  # noqa: BLE001 - servers differ; the next source may have it
                continue
        return DEFAULT_CHARACTER_LIMIT
