"""What a network adapter is: it turns its network's streams into events and carries out actions.

The runtime knows adapters only through this protocol, so Mastodon and Bluesky stay out of each
other's way and out of the core.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from bot.model import Action, Event, Network

Emit = Callable[[Event], None]


class PermanentError(Exception):
    """The effect can never succeed (the post is gone, the reply is forbidden): stop retrying."""


class Source(Protocol):
    """One long-running listener (a stream, a poller). `run` returns or raises when it stops;
    the supervisor restarts it with backoff, and it resumes from its stored cursor."""

    name: str
    mode: str  # "streaming" | "polling", shown by `numpolville status`
    reason: str  # why a source that could stream polls ("" otherwise), shown by `status`

    def run(self, emit: Emit, stop: threading.Event) -> None: ...


class Adapter(Protocol):
    network: Network

    def connect(self) -> frozenset[str]:
        """Log in, read the bot's identity and the server's limits; return the bot's own ids."""
        ...

    def sources(self) -> list[Source]: ...

    def perform(self, action: Action) -> str | None:
        """Carry out one effect idempotently. Returns what the store must remember: for a prompt
        "URI REF" of the reply, for a boost the boost's ref. Raises PermanentError or any other
        exception (then the intent is retried later)."""
        ...

    def post_thread(self, texts: list[str], key: str) -> list[str]:
        """Optional (the digest checks with getattr; an adapter without it skips digests): post
        `texts` as a thread of public posts, each a reply to the one before, and return their refs.
        Idempotent by `key`: called again with the same key (after a crash), it finds the posts
        already made and posts only what is missing. Each text is already within the limit the
        adapter announces as `max_characters` (Mastodon: the server's; Bluesky: 300 graphemes)."""
        ...

    def close(self) -> None: ...
