"""One websocket loop for both streams (firehose and Jetstream): they differ only in how a message
is judged and where its cursor sits.

Messages are received as raw bytes, in batches (every message one socket read brings, see
`websocket.Connection`): the pre-filter scans a batch at once, and most messages cost a share of a
few byte searches. The
cursor is read from the last message only when it is saved (every `SAVE_EVERY` messages or
`SAVE_SECONDS`, and when the loop ends), after the message was handled, so a restart replays a
little and loses nothing: the store's unique keys absorb the overlap. Reconnecting with backoff
is the supervisor's job.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod

from bot.adapter import Emit
from bot.bluesky.detect import Hit, Prefilter, StreamError
from bot.bluesky.ingest import Ingest
from bot.store import Store
from bot.websocket import Connection

log = logging.getLogger("numpolville.bluesky")
# A cursor save is a transaction: every 10,000 messages in a catch-up burst (a live relay sends a
# few thousand a second, so SAVE_SECONDS rules); a crash replays at most that, the store dedups.
SAVE_EVERY = 10_000
SAVE_SECONDS = 2.0  # a quiet stream still saves its cursor, so a crash loses nothing
MAX_MESSAGE = 16 * 1024 * 1024  # a relay may send commits of several MB (tooBig is 2 MB of blocks)


class StreamSource(ABC):
    mode = "streaming"
    reason = ""
    name: str

    def __init__(self, url: str, ingest: Ingest, store: Store, prefilter: Prefilter) -> None:
        self.base_url, self.ingest, self.store, self.prefilter = url, ingest, store, prefilter
        self.ws: Connection | None = None
        self._last, self._unsaved, self._saved_at = b"", 0, time.monotonic()

    @abstractmethod
    def url(self, cursor: str | None) -> str: ...

    @abstractmethod
    def hits(self, message: bytes) -> list[Hit]:
        """The exact rules on one message that passed the pre-filter (may raise on bad input)."""

    @abstractmethod
    def cursor_of(self, message: bytes) -> str | None: ...

    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Receive in batches (every message one socket read brings) and `consume` them."""
        self._last, self._unsaved, self._saved_at = b"", 0, time.monotonic()
        url = self.url(self.store.cursor("bluesky", self.name))
        with Connection(url, max_size=MAX_MESSAGE) as ws:
            self.ws = ws
            try:
                while not stop.is_set():
                    self.consume(ws.recv_batch(0.5), emit)
            finally:
                self.ws = None
                if self._unsaved:
                    self._save(self._last)

    def consume(self, batch: list[bytes], emit: Emit) -> None:
        """Handle a batch of received messages (the whole path after the socket, the same for
        the benchmark) and save the cursor when it is due."""
        if batch:
            for message in self.prefilter.select(batch):
                self._handle(message, emit)
            self._last = batch[-1]
            self._unsaved += len(batch)
        if self._unsaved and (self._unsaved >= SAVE_EVERY
                              or time.monotonic() - self._saved_at > SAVE_SECONDS):
            self._save(self._last)
            self._unsaved, self._saved_at = 0, time.monotonic()

    def _handle(self, message: bytes, emit: Emit) -> None:
        try:
            hits = self.hits(message)
        except StreamError as e:
            if "FutureCursor" in str(e):  # a cursor from another relay: start from now instead
                self.store.set_cursor("bluesky", self.name, "")
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
            log.warning("%s: skipped a message that does not decode (%s)", self.name, e)
            return
        for hit in hits:
            self.ingest.handle(hit, emit)

    def _save(self, message: bytes) -> None:
        try:
            cursor = self.cursor_of(message)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s: no cursor in the last message (%s)", self.name, e)
            return
        if cursor is not None:
            self.store.set_cursor("bluesky", self.name, cursor)

    def close(self) -> None:
        ws = self.ws
        if ws is not None:
            ws.close()
