"""The streaming API over WebSocket, the one transport every server family has.

Mastodon also has SSE, but GoToSocial, Akkoma and Pleroma serve WebSocket only, and they do not
agree on how a subscription is made: Akkoma reads neither the `tag` of a `subscribe` message nor
an `Authorization` header (lib/pleroma/web/mastodon_api/websocket_handler.ex). What all of them
read is the stream named in the URL (`/api/v1/streaming?stream=hashtag&tag=…`) and the token in
`Sec-WebSocket-Protocol`, which also keeps it out of URLs and proxy logs. So each feed opens its
own connection that way, with `bot.websocket.Connection`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from bot.mastodon.client import USER_AGENT
from bot.websocket import Connection

log = logging.getLogger("numpolville.mastodon")
MAX_MESSAGE = 4 << 20  # a status with a long poll and many mentions is a few kB; 4 MB is plenty
OPEN_TIMEOUT = 10.0


class StreamRefused(Exception):
    """The server said no to a subscription (an error message on the socket)."""


class Streams:
    """Opens the home server's streams with the bot's token."""

    def __init__(self, streaming_url: str, token: str) -> None:
        self.streaming_url, self._token = streaming_url.rstrip("/"), token

    def open(self, **query: str) -> Connection:
        url = f"{self.streaming_url}/api/v1/streaming?{urlencode(query)}"
        return Connection(url, max_size=MAX_MESSAGE, open_timeout=OPEN_TIMEOUT,
                          headers={"User-Agent": USER_AGENT},  # GoToSocial answers 418 without one
                          subprotocols=[self._token] if self._token else ())


def events(messages: list[bytes]) -> Iterator[tuple[str, Any]]:
    """(event, payload) for each message: a status or notification as a dict, a deleted status's
    id as a string. A message that is not one (malformed JSON, no event) is logged and skipped;
    an error message raises StreamRefused."""
    for raw in messages:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            log.warning("mastodon: skipping a stream message that is not a JSON object (%d bytes)",
                        len(raw))
            continue
        if "error" in message:
            raise StreamRefused(str(message["error"])[:200])
        event, payload = message.get("event"), message.get("payload")
        if not isinstance(event, str):
            continue
        if event in ("update", "notification", "status.update") and isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                log.warning("mastodon: skipping a %s event whose payload is not JSON", event)
                continue
        yield event, payload
