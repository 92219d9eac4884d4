"""The Bluesky adapter: listens on the configured source and carries out the core's effects with
records in the bot's own repository.

Every write uses a record key derived from (purpose, subject), so a retry after a crash finds the
first attempt (the create fails on the taken key, the record is there) and reports it instead of
writing a second prompt, repost or like.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from atproto import Client
from atproto_client.exceptions import (
    AtProtocolError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.utils import get_model_as_dict

from bot.adapter import PermanentError, Source
from bot.bluesky.detect import POST, Prefilter, Rules
from bot.bluesky.firehose import FirehoseSource
from bot.bluesky.ingest import Ingest
from bot.bluesky.jetstream import JetstreamSource
from bot.bluesky.limits import WriteBudget
from bot.bluesky.profile import ensure_bot_label
from bot.bluesky.records import (
    MAX_GRAPHEMES,
    fit,
    link_facets,
    now_iso,
    record_key,
    reply_post,
    strong_ref,
    subject_record,
)
from bot.bluesky.search import NotificationSource, SearchSource
from bot.bluesky.session import open_client, session_path
from bot.bluesky.stream import StreamSource
from bot.config import Config
from bot.messages import message
from bot.model import Acknowledge, Action, Boost, Network, Post, Prompt, Reply, Unboost
from bot.store import Store

log = logging.getLogger("numpolville.bluesky")
REPOST = "app.bsky.feed.repost"
LIKE = "app.bsky.feed.like"
THREAD_WAIT = 5.0  # the AppView indexes a post within ~0.3 s, rarely 1 s


class BlueskyAdapter:
    network: Network = "bluesky"
    max_characters = MAX_GRAPHEMES  # what the digest counts against

    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self.budget = WriteBudget()
        self.client: Client | None = None
        self.did = ""
        self.streams: list[StreamSource] = []

    # ---- lifecycle ------------------------------------------------------------------------------

    def connect(self) -> frozenset[str]:
        try:
            self.client, self.did = open_client(self.config.bluesky, session_path(self.config.database))
        except UnauthorizedError as e:  # a wrong password stays wrong: stop instead of retrying
            raise PermanentError(f"Bluesky refused the login of {self.config.bluesky.handle}: {e}") from e
        self.ingest = Ingest(self.client, Rules(self.config.hashtag, self.did), self.store)
        log.info("Bluesky: logged in as %s (%s)", self.config.bluesky.handle, self.did)
        if self.config.bluesky.set_bot_label:
            self._declare_bot()
        return frozenset({self.did})

    def _declare_bot(self) -> None:
        """The `bot` self-label on the profile is a courtesy to readers, not a condition to run."""
        try:
            done = ensure_bot_label(self._client, self.did, self._write)
        except Exception as e:  # noqa: BLE001 — whatever goes wrong, the bot still runs
            log.warning("Bluesky: the `bot` label could not be added to the profile (%s: %s)",
                        type(e).__name__, e)
            return
        if done:
            log.info("Bluesky: `bot` self-label %s (the app shows the account as automated)", done)

    def sources(self) -> list[Source]:
        b = self.config.bluesky
        if b.source == "search":
            return [SearchSource(self.ingest, self.store, b.poll_interval),
                    NotificationSource(self.ingest, self.store, b.poll_interval)]
        if b.source == "firehose":
            stream: StreamSource = FirehoseSource(b.firehose_url, self.ingest, self.store,
                                                  Prefilter(self.ingest.rules))
        else:
            stream = JetstreamSource(b.jetstream_url, self.ingest, self.store,
                                     Prefilter(self.ingest.rules, json_text=True))
        self.streams.append(stream)
        return [stream]

    def close(self) -> None:
        for stream in self.streams:
            stream.close()

    # ---- effects --------------------------------------------------------------------------------

    def perform(self, action: Action) -> str | None:
        if isinstance(action, Prompt):
            uri, cid = self._reply(action.post, "prompt", message(self.config, action))
            return f"{uri} {cid}"
        if isinstance(action, Reply):
            return self._reply(action.post, f"reply:{action.text_key}", message(self.config, action))[0]
        if isinstance(action, Boost):
            return self._create(REPOST, record_key("repost", action.uri),
                                subject_record(REPOST, action.ref))[0]
        if isinstance(action, Unboost):
            self._write("delete", self._client.com.atproto.repo.delete_record,
                        {"repo": self.did, "collection": REPOST,
                         "rkey": record_key("repost", action.uri)})
            return None
        if isinstance(action, Acknowledge):
            self._create(LIKE, record_key("like", action.post.uri), subject_record(LIKE, action.post.ref))
            return None
        raise PermanentError(f"not a Bluesky effect: {type(action).__name__}")

    def post_thread(self, texts: list[str], key: str) -> list[str]:
        """The digest as a thread of public posts. Each post's record key comes from `key` and its
        place, so a call repeated after a crash finds the posts already made and adds the rest."""
        refs: list[str] = []
        root: dict[str, str] | None = None
        for n, text in enumerate(texts):
            body = fit(text)
            record: dict[str, Any] = {"$type": POST, "text": body, "facets": link_facets(body),
                                      "langs": [self.config.language], "createdAt": now_iso()}
            if refs:
                record["reply"] = {"root": root, "parent": strong_ref(refs[-1])}
            uri, cid = self._create(POST, record_key(f"thread:{n}", key), record)
            root = root or {"uri": uri, "cid": cid}
            refs.append(f"{uri} {cid}")
        return refs

    def _reply(self, post: Post, purpose: str, text: str) -> tuple[str, str]:
        """Reply in the post's thread: root is the thread's root, parent the post itself."""
        parent = strong_ref(post.ref)
        record = self._thread_record(post.uri)
        root = (record.get("reply") or {}).get("root") or parent
        body = reply_post(text, (post.author.handle, post.author.id),
                          {"uri": root["uri"], "cid": root["cid"]}, parent, self.config.language)
        return self._create(POST, record_key(purpose, post.uri), body)

    def _thread_record(self, uri: str) -> dict[str, Any]:
        """The post's record from the AppView, after checking the viewer may reply (threadgate,
        blocks). Waits briefly for a post the AppView has not indexed yet; one still missing after
        that is gone, and the effect is given up rather than retried forever."""
        deadline = time.monotonic() + THREAD_WAIT
        while True:
            try:
                res = self._client.app.bsky.feed.get_post_thread({"uri": uri, "depth": 0,
                                                                  "parentHeight": 0})
                break
            except AtProtocolError as e:
                if "NotFound" not in str(e):
                    raise
                if time.monotonic() > deadline:  # deleted, or its author gone: retrying won't help
                    raise PermanentError(f"the post is not in the AppView: {e}") from e
                time.sleep(0.1)
        view = getattr(res.thread, "post", None)
        if view is None:
            raise PermanentError(f"the post is not available ({res.thread.py_type})")
        if view.viewer and view.viewer.reply_disabled:
            raise PermanentError("the thread's threadgate does not allow the bot to reply")
        return get_model_as_dict(view.record)

    def _create(self, collection: str, rkey: str, record: dict[str, Any]) -> tuple[str, str]:
        """Create the record under `rkey`. A create on a taken key fails (the reference PDS answers
        500, others "already exists"): if the record is there, an earlier attempt made it."""
        try:
            res = self._write("create", self._client.com.atproto.repo.create_record,
                              {"repo": self.did, "collection": collection, "rkey": rkey,
                               "record": record})
            return res.uri, res.cid
        except RequestErrorBase as e:
            if isinstance(e, UnauthorizedError):
                raise
            try:
                existing = self._client.com.atproto.repo.get_record(
                    {"repo": self.did, "collection": collection, "rkey": rkey})
            except AtProtocolError:
                raise e from None
            return existing.uri, existing.cid or ""

    def _write(self, operation: str, call: Any, data: dict[str, Any]) -> Any:
        self.budget.spend(operation)
        try:
            return call(data)
        except RateLimitExceededError as e:
            raise self.budget.server_said_wait(e.reset_at, e.retry_after) from e

    @property
    def _client(self) -> Client:
        if self.client is None:
            raise RuntimeError("BlueskyAdapter.connect() was not called")
        return self.client

