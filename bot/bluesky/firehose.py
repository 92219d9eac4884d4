"""`com.atproto.sync.subscribeRepos` (a relay's or a PDS's firehose), read as raw frames by the
streams' own client (`StreamSource.run`): the SDK's client parses every frame into models before
the bot could look at it, which is exactly the work the pre-filter exists to skip. The cursor is
the frame's `seq`."""

from __future__ import annotations

from urllib.parse import urlencode

from bot.bluesky.detect import Hit, frame_seq
from bot.bluesky.stream import StreamSource

ENDPOINT = "com.atproto.sync.subscribeRepos"


class FirehoseSource(StreamSource):
    name = "firehose"

    def url(self, cursor: str | None) -> str:
        base = self.base_url.rstrip("/")
        if not base.endswith(ENDPOINT):
            base += "/" + ENDPOINT
        return base + ("?" + urlencode({"cursor": cursor}) if cursor else "")

    def hits(self, message: bytes) -> list[Hit]:
        return self.ingest.rules.frame_hits(message)

    def cursor_of(self, message: bytes) -> str | None:
        seq = frame_seq(message)
        return None if seq is None else str(seq)
