"""`MastodonAdapter`: the bot on one home server (Mastodon, GoToSocial, Akkoma, Pleroma).

It listens through the feeds in `sources.py` and carries out the core's effects. Every effect is
idempotent: a prompt or reply carries an `Idempotency-Key` derived from the post (a retry after a
crash posts nothing new), and boosting, unboosting and favouriting are idempotent on the server.
Mastodon forgets a key after an hour, so a prompt or reply to an older post is first looked for in
the post's thread (`_posted_before`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.adapter import PermanentError, Source
from bot.config import Config
from bot.mastodon.client import Retrier, make_client
from bot.mastodon.convert import html_to_text
from bot.mastodon.reader import PostReader
from bot.mastodon.sources import DiscoveryFeed, MentionFeed, TagFeed
from bot.messages import message
from bot.model import Acknowledge, Action, Boost, Network, Post, Prompt, Reply, Unboost
from bot.store import Store

log = logging.getLogger("numpolville.mastodon")
DEFAULT_CHARACTER_LIMIT = 500
# Mastodon keeps an Idempotency-Key for 3600 s from the first call, which comes after the post was
# made. Below this age a retry is surely within the hour; the 15 minutes left over absorb the
# clocks (the post's `created_at` is its origin server's) and slow calls.
KEY_SAFE_AGE = timedelta(minutes=45)
LEADING_MENTIONS = re.compile(r"^(?:@\S+\s+)+")


class MastodonAdapter:
    network: Network = "mastodon"

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
            status = self._reply(action, "prompt")
            self.reader.remember_prompt(str(status["id"]), status["uri"])
            return f"{status['uri']} {status['id']}"
        if isinstance(action, Reply):
            return str(self._reply(action, f"reply:{action.text_key}")["id"])
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

    def _reply(self, action: Prompt | Reply, purpose: str) -> Any:
        """Post the prompt or reply once: the idempotency key covers a retry within the hour, the
        thread of an older post is searched for the status an earlier attempt made."""
        post = action.post
        body = self._fit(f"@{post.author.handle} {message(self.config, action)}")
        earlier = self._posted_before(action, body) if _key_may_be_forgotten(post) else None
        if earlier is not None:
            log.info("mastodon: %s of %s was posted before (%s)", purpose, post.uri, earlier["uri"])
            return earlier
        key = hashlib.sha256(f"{purpose}:{post.uri}".encode()).hexdigest()[:32]
        return self.retry(self.client.status_post, body, in_reply_to_id=post.ref,
                          visibility=action.visibility, idempotency_key=key,
                          language=self.config.language)

    def _posted_before(self, action: Prompt | Reply, body: str) -> Any | None:
        """The bot's status an earlier attempt of this effect made, among the post's replies.

        A prompt is any bot reply to the post: the rules send a tagged post nothing else (replies
        go to answers, and an answer is never prompted), so a prompt text edited in the config
        between two attempts still matches. A reply must also say the same: one answer can get
        several (an unclear answer edited into a category gets "not_understood", then "thanks").
        A post that is gone raises PermanentError (the effect is moot), like posting to it would.
        """
        thread = self.retry(self.client.status_context, action.post.ref)
        for status in thread["descendants"]:
            if (str(status["account"]["id"]) in self.reader.bot_ids
                    and str(status.get("in_reply_to_id")) == action.post.ref
                    and (isinstance(action, Prompt) or _same_text(status, body))):
                return status
        return None

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


def _key_may_be_forgotten(post: Post) -> bool:
    """Old enough that Mastodon may have dropped the idempotency key of an earlier attempt."""
    return datetime.now(UTC) - post.created_at > KEY_SAFE_AGE


def _same_text(status: Mapping[str, Any], body: str) -> bool:
    """Whether a status says `body`. Mentions are left out (servers show "@user@domain" as
    "@user"), and so are line breaks and spaces (rendered as markup)."""
    def words(text: str) -> list[str]:
        return LEADING_MENTIONS.sub("", text.strip()).split()
    return words(html_to_text(status.get("content"))) == words(body)
