"""The server families the bot meets, as the test server imitates them.

Why: real deployments run Mastodon, GoToSocial, Akkoma or Pleroma, and each answers the same API
a little differently. Each `Flavour` lists the differences a hashtag bot can trip on, as each
family documents them or its source shows (shared/notes/mastodon-server-families.md names the
files): a test picks one with `MastodonServer(flavour=...)`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: sortable


@dataclass(frozen=True)
class Flavour:
    name: str
    software: str  # nodeinfo's software.name
    version: str  # the instance's `version`
    ids: str  # "snowflake" (Mastodon), "ulid" (GoToSocial), "flake" (Pleroma/Akkoma)
    sse: bool  # the SSE endpoints exist (Mastodon's streaming server only)
    fed_streams: frozenset[str] | None  # WebSocket streams that carry events (None: all)
    ws_subscribe_params: bool  # a WebSocket `subscribe` message may carry `tag` (Akkoma's ignores it)
    ws_authorization_header: bool  # a WebSocket may authenticate with `Authorization: Bearer`
    idempotency: bool  # `Idempotency-Key` honoured on POST /api/v1/statuses
    replay_header: bool  # a replayed response says `idempotent-replayed: true` (Pleroma's plug)
    tag_404_until_used: bool  # the tag timeline is 404 until some post has used the tag
    token_for_tag_timeline: bool
    token_for_context: bool
    interaction_policy: bool  # statuses carry `interaction_policy`; a boost may need approval
    update_notifications: bool  # an edit notifies those who boosted the status (`update`)


MASTODON = Flavour(
    name="mastodon", software="mastodon", version="4.3.0", ids="snowflake", sse=True,
    fed_streams=None, ws_subscribe_params=True, ws_authorization_header=True, idempotency=True,
    replay_header=False, tag_404_until_used=False, token_for_tag_timeline=False,
    token_for_context=False, interaction_policy=False, update_notifications=True)
# GoToSocial: WebSocket only; `hashtag` and `public` subscriptions are accepted and never fed
# (internal/api/client/streaming: "unknown 'stream' field"), the tag timeline answers 404 "tag
# was not found" until a post used the tag (internal/processing/timeline/tag.go) and needs a token,
# Idempotency-Key is not implemented, ids are ULIDs, boosts follow the interaction policy; an edit
# is streamed but notified to no one (no `update` type in internal/gtsmodel; issue #3991), and an
# unknown `types[]` value is ignored (api/client/notifications/notificationsget.go).
GOTOSOCIAL = Flavour(
    name="gotosocial", software="gotosocial", version="0.19.2+git-6ef3fa0", ids="ulid", sse=False,
    fed_streams=frozenset({"user", "user:notification", "list", "direct"}),
    ws_subscribe_params=True, ws_authorization_header=True, idempotency=False,
    replay_header=False, tag_404_until_used=True, token_for_tag_timeline=True,
    token_for_context=True, interaction_policy=True, update_notifications=False)
# Akkoma: WebSocket only, the stream named in the URL (`?stream=hashtag&tag=`); its `subscribe`
# message reads no `tag` and the token comes from `access_token` or Sec-WebSocket-Protocol
# (lib/pleroma/web/mastodon_api/websocket_handler.ex); the IdempotencyPlug replays with a header.
AKKOMA = Flavour(
    name="akkoma", software="akkoma", version="2.7.2 (compatible; Akkoma 3.15.2)", ids="flake",
    sse=False, fed_streams=None, ws_subscribe_params=False, ws_authorization_header=False,
    idempotency=True, replay_header=True, tag_404_until_used=False, token_for_tag_timeline=False,
    token_for_context=False, interaction_policy=False, update_notifications=True)

FLAVOURS = {f.name: f for f in (MASTODON, GOTOSOCIAL, AKKOMA)}


class IdMaker:
    """Strictly increasing ids in a flavour's format; `sort_key` orders them the server's way."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if self.kind == "snowflake":  # milliseconds << 16
                self._last = max(ms << 16, self._last + 1)
                return str(self._last)
            if self.kind == "ulid":  # 48 bits of milliseconds, 80 random (monotonic within one ms)
                self._last = max(ms << 80 | int.from_bytes(os.urandom(10), "big") >> 1, self._last + 1)
                return _encode(self._last, CROCKFORD, 26)
            # Pleroma's FlakeId: 64 bits of milliseconds, 48 of worker id, 16 of sequence; base62
            self._last = max(ms << 64 | 0x5EED << 16, self._last + 1)
            return _encode(self._last, BASE62, 22)


def sort_key(value: str) -> tuple[int, str]:
    """Ids of one server compare by length, then text: numbers and fixed-width codes alike."""
    return len(value), value


def _encode(number: int, alphabet: str, width: int) -> str:
    out = []
    while number:
        number, digit = divmod(number, len(alphabet))
        out.append(alphabet[digit])
    return "".join(reversed(out)).rjust(width, alphabet[0])
