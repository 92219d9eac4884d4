"""Jetstream: the firehose as JSON, filtered by collection on the server. The cursor is `time_us`,
rewound a few seconds on reconnect because Jetstream's order is only roughly by time."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson

from bot.bluesky.detect import FOLLOW, POST, Hit
from bot.bluesky.stream import StreamSource

REWIND_US = 5_000_000


class JetstreamSource(StreamSource):
    name = "jetstream"

    def url(self, cursor: str | None) -> str:
        params = [("wantedCollections", POST), ("wantedCollections", FOLLOW)]
        if cursor:
            params.append(("cursor", str(max(0, int(cursor) - REWIND_US))))
        return f"{self.base_url}{'&' if '?' in self.base_url else '?'}{urlencode(params)}"

    def hits(self, message: bytes) -> list[Hit]:
        hit = self.ingest.rules.jetstream_hit(message)
        return [hit] if hit else []

    def cursor_of(self, message: bytes) -> str | None:
        time_us = orjson.loads(message).get("time_us")
        return str(time_us) if isinstance(time_us, int) else None
