"""From hits to events: every source (firehose, Jetstream, search, notifications) ends here, so
conversion, enrichment from the AppView and the set of tracked posts are done once, the same way.

Enrichment is what the rules need about the author: handle, bio (#nobot/#noindex/#noai),
self-labels (`!no-unauthenticated`) for every emitted post, and whether they follow the bot for
tagged posts only. Both lookups are cached; a follow of the bot seen in a stream drops the cached
answer for that author.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from atproto import Client
from atproto_client.exceptions import AtProtocolError

from bot.adapter import Emit
from bot.bluesky.convert import split_uri, to_post
from bot.bluesky.detect import POST, Hit, Rules
from bot.model import Author, PostDeleted, PostEdited, PostSeen
from bot.store import Store

log = logging.getLogger("numpolville.bluesky")
PROFILE_TTL = 3600.0
FOLLOW_TTL = 60.0


class TtlCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            hit = self.data.get(key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self.data) > 10_000:
                self.data.clear()
            self.data[key] = (time.monotonic(), value)

    def drop(self, key: str) -> None:
        with self._lock:
            self.data.pop(key, None)


class Ingest:
    def __init__(self, client: Client, rules: Rules, store: Store) -> None:
        self.client, self.rules, self.store = client, rules, store
        self.profiles = TtlCache(PROFILE_TTL)
        self.follows = TtlCache(FOLLOW_TTL)
        for did, rkey in _tracked(store):
            self.rules.track(did, rkey)

    def handle(self, hit: Hit, emit: Emit) -> None:
        if hit.kind in ("post", "edit"):
            self.post(hit, emit)
        elif hit.kind == "delete":
            emit(PostDeleted("bluesky", f"at://{hit.did}/{POST}/{hit.rkey}"))
        else:
            self.follows.drop(hit.did)

    def post(self, hit: Hit, emit: Emit) -> None:
        tagged = self.rules.tag in hit.tags
        author = self.author(hit.did, check_follow=tagged and hit.did != self.rules.bot_did)
        post = to_post(hit.record, hit.did, hit.rkey, hit.cid or "", bot_did=self.rules.bot_did,
                       author=author, tags=hit.tags)
        if tagged:
            self.rules.track(hit.did, hit.rkey)
        emit(PostEdited(post) if hit.kind == "edit" else PostSeen(post))

    def author(self, did: str, *, check_follow: bool) -> Author:
        profile = self.profiles.get(did)
        if profile is None:
            profile = self._profile(did)
            self.profiles.put(did, profile)
        follows = self._follows_bot(did) if check_follow else None
        return Author("bluesky", did, profile["handle"], profile["bio"], follows, profile["labels"])

    def _profile(self, did: str) -> dict[str, Any]:
        """Handle, bio and self-labels. An account the AppView does not know yet (it indexes within
        a second) is retried briefly, then taken with its DID as handle and no bio."""
        for attempt in range(5):
            try:
                p = self.client.app.bsky.actor.get_profile({"actor": did})
                labels = tuple(label.val for label in p.labels or () if label.src == did)
                return {"handle": p.handle, "bio": p.description or "", "labels": labels}
            except AtProtocolError as e:
                if "Profile not found" not in str(e) and "NotFound" not in str(e):
                    raise
                time.sleep(0.2 * (attempt + 1))
        log.warning("profile of %s not found in the AppView; using the DID", did)
        return {"handle": did, "bio": "", "labels": ()}

    def _follows_bot(self, did: str) -> bool:
        cached = self.follows.get(did)
        if cached is None:
            res = self.client.app.bsky.graph.get_relationships(
                {"actor": self.rules.bot_did, "others": [did]})
            rel = res.relationships[0] if res.relationships else None
            cached = bool(getattr(rel, "followed_by", None))
            self.follows.put(did, cached)
        return bool(cached)


def _tracked(store: Store) -> set[tuple[str, str]]:
    """(did, rkey) of the Bluesky items still open, so their deletes are recognised."""
    tracked = set()
    for row in store.items():
        if row["network"] == "bluesky" and not row["deleted"]:
            did, _, rkey = split_uri(row["uri"])
            tracked.add((did, rkey))
    return tracked
