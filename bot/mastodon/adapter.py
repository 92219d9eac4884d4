"""`MastodonAdapter`: the bot on one home server (Mastodon, GoToSocial, Akkoma, Pleroma).

At connect it reads what the server is and can do (`server.py`), follows the hashtag where it
can, and then listens through the feeds in `sources.py` and carries out the core's effects. Every
effect is idempotent: a prompt or reply carries an `Idempotency-Key` derived from the post (a
retry after a crash posts nothing new), and boosting, unboosting and favouriting are idempotent on
the server. Mastodon forgets a key after an hour and GoToSocial ignores it, so there a prompt,
reply or digest post is first looked for among what the bot already posted (`_posted_before`).
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
from bot.mastodon.server import DEFAULT_CHARACTER_LIMIT, ServerInfo, follow_tag, probe
from bot.mastodon.sources import DiscoveryFeed, MentionFeed, TagFeed
from bot.mastodon.stream import Streams
from bot.messages import message
from bot.model import Acknowledge, Action, Boost, Network, Post, Prompt, Reply, Unboost
from bot.store import Store

log = logging.getLogger("numpolville.mastodon")
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
        self.server: ServerInfo | None = None
        self.me: Mapping[str, Any] = {}

    # ---- Adapter --------------------------------------------------------------------------------

    def connect(self) -> frozenset[str]:
        m = self.config.mastodon
        self.me = self.retry(self.client.account_verify_credentials)
        self.reader.bot_ids = frozenset({str(self.me["id"])})
        server = probe(self.client, self.retry, m.api_base_url)
        if m.follow_tag:
            server = follow_tag(self.client, self.retry, server, self.config.hashtag)
        self.server, self.max_characters = server, server.max_characters
        self.store.set_server("mastodon", m.api_base_url, server.to_dict())
        if m.set_bot_flag and not self.me.get("bot"):
            self.retry(self.client.account_update_credentials, bot=True)
        log.info("mastodon: signed in as @%s on %s: %s", self.me["acct"], m.api_base_url,
                 server.describe())
        # The account's web and ActivityPub addresses too: its posts' Bridgy Fed copies name
        # them (`bridgyOriginalUrl`), and the bot never curates its own posts.
        return self.reader.bot_ids | {str(self.me[k]) for k in ("url", "uri") if self.me.get(k)}

    def sources(self) -> list[Source]:
        streams = None
        if self.config.mastodon.streaming and self.server and self.server.streaming_url:
            streams = Streams(self.server.streaming_url, self.config.mastodon.access_token)
        feeds: list[Source] = [
            TagFeed(self.config, self.store, self.reader, self.client, self.retry, streams),
            MentionFeed(self.config, self.store, self.reader, self.client, self.retry, streams)]
        if streams is None:
            for feed in feeds:
                feed.reason = ("streaming = false in the configuration" if not self.config.mastodon.streaming
                               else "the server announces no streaming URL")
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
            return self._boost(action)
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
        place, so a retry after a crash continues the thread instead of starting a second one;
        on a server that ignores the key, the bot's own recent posts are searched first."""
        ids: list[str] = []
        mine = self._recent_posts() if not self._idempotent() else []
        for n, text in enumerate(texts):
            body = self._fit(text)
            parent = ids[-1] if ids else None
            earlier = next((s for s in mine if str(s.get("in_reply_to_id") or "") == (parent or "")
                            and _same_text(s, body)), None)
            if earlier is None:
                digest = hashlib.sha256(f"thread:{key}:{n}".encode()).hexdigest()[:32]
                earlier = self.retry(self.client.status_post, body, in_reply_to_id=parent,
                                     visibility="public", idempotency_key=digest,
                                     language=self.config.language)
            ids.append(str(earlier["id"]))
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
        look = not self._idempotent() or _key_may_be_forgotten(post)
        earlier = self._posted_before(action, body) if look else None
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

    def _boost(self, action: Boost) -> str:
        """Boost once. GoToSocial lets an author make boosts wait for approval, or refuse them
        (its `interaction_policy`): either is written on the item, and a refusal is final."""
        try:
            boost = self.retry(self.client.status_reblog, action.ref)
        except PermanentError as e:
            if "403" in str(e):
                self.store.boost_note("mastodon", action.uri, "refused: the author's interaction "
                                      "policy does not allow boosts")
            raise
        original = boost.get("reblog") or {}
        rules = (original.get("interaction_policy") or {}).get("can_reblog")
        if rules and not _automatic(rules, str(self.me.get("url") or "")):
            log.info("mastodon: the boost of %s waits for the author's approval", action.uri)
            self.store.boost_note("mastodon", action.uri, "awaiting the author's approval")
        return str(boost["id"])

    def _idempotent(self) -> bool:
        return self.server is not None and self.server.idempotency

    def _recent_posts(self) -> list[Any]:
        """The bot's own latest posts (what a crashed attempt at a thread may have left)."""
        return list(self.retry(self.client.account_statuses, self.me["id"], limit=40))

    def _fit(self, text: str) -> str:
        return text if len(text) <= self.max_characters else text[: self.max_characters - 1] + "…"


def _key_may_be_forgotten(post: Post) -> bool:
    """Old enough that Mastodon may have dropped the idempotency key of an earlier attempt."""
    return datetime.now(UTC) - post.created_at > KEY_SAFE_AGE


def _automatic(rules: Mapping[str, Any], bot_url: str) -> bool:
    """Does a GoToSocial `can_reblog` rule approve the bot's boost at once? "public" and "me" (the
    viewer, named by the server) do, and so does the bot's own URL."""
    approved = set(rules.get("automatic_approval") or rules.get("always") or ())
    return bool(approved & {"public", "me", bot_url})


def _same_text(status: Mapping[str, Any], body: str) -> bool:
    """Whether a status says `body`. Mentions are left out (servers show "@user@domain" as
    "@user"), and so are line breaks and spaces (rendered as markup)."""
    def words(text: str) -> list[str]:
        return LEADING_MENTIONS.sub("", text.strip()).split()
    return words(html_to_text(status.get("content"))) == words(body)
