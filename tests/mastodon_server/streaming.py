"""Streaming hub: fans state events out to SSE and WebSocket connections.

Why: Mastodon's streaming API is push-based; state changes happen in any
thread (tests call `server.post` directly), so events are handed to the
server's event loop with `call_soon_threadsafe` and rendered per connection
(per viewer), exactly once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from . import entities
from .state import Event, Status, World

SENTINEL = object()


@dataclass(eq=False)
class Connection:
    """One open stream; `subs` maps internal key -> stream name list as Mastodon reports it."""

    viewer: Optional[str]
    transport: str  # "sse" or "ws"
    subs: dict[str, list[str]] = field(default_factory=dict)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    dropped: bool = False


def stream_key(stream: str, viewer: Optional[str], tag: Optional[str]) -> Optional[tuple[str, list[str]]]:
    """Translate a Mastodon stream name (+tag) to (internal key, reported stream list)."""
    tag_l = (tag or "").lower().lstrip("#")
    if stream in ("hashtag", "hashtag:local"):
        if not tag_l:
            return None
        return f"{stream}:{tag_l}", [stream, tag or tag_l]
    if stream in ("public", "public:local", "public:remote"):
        return stream, [stream]
    if stream in ("user", "user:notification") and viewer is not None:
        return f"{stream}:{viewer}", [stream]
    return None


class Hub:
    def __init__(self, world: World) -> None:
        self.world = world
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.connections: set[Connection] = set()
        self.total_opened = 0  # lets tests see reconnects even while streams stay open

    def register(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.total_opened += 1

    def publish(self, event: Event) -> None:
        """World listener; safe to call from any thread."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, event)

    def drop_all(self) -> None:
        """Abruptly end every open stream (used by the drop_streams fault and by stop())."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._drop_all_now)

    def _drop_all_now(self) -> None:
        for conn in list(self.connections):
            conn.dropped = True
            conn.queue.put_nowait(SENTINEL)

    def _targets(self, st: Status) -> set[str]:
        w = self.world
        keys: set[str] = set()
        author = st.account_id
        if st.visibility in ("public", "unlisted", "private"):
            keys.add(f"user:{author}")
            keys.update(f"user:{f}" for f in w.followers_of(author))
        if st.visibility == "direct":
            keys.add(f"user:{author}")
            keys.update(f"user:{m}" for m in st.mention_ids)
        if st.visibility == "public" and st.reblog_of_id is None:
            keys.add("public")
            keys.add("public:local" if st.local else "public:remote")
            for t in st.tags:
                keys.add(f"hashtag:{t}")
                if st.local:
                    keys.add(f"hashtag:local:{t}")
            keys.update(f"user:{a}" for a in w.tagged_for(st))  # followed tags reach home timelines
        return keys

    def _dispatch(self, event: Event) -> None:
        w = self.world
        with w.lock:
            if event.name == "notification" and event.notification is not None:
                n = event.notification
                keys = {f"user:{n.account_id}", f"user:notification:{n.account_id}"}
                payload_for = lambda viewer: json.dumps(entities.notification(w, n))  # noqa: E731
            elif event.status is not None:
                st = event.status
                keys = self._targets(st)
                if event.name == "delete":
                    payload_for = lambda viewer: st.id  # noqa: E731
                else:
                    payload_for = lambda viewer: json.dumps(entities.status(w, st, viewer))  # noqa: E731
            else:
                return
            for conn in list(self.connections):
                hit = [k for k in conn.subs if k in keys]
                if not hit or conn.dropped:
                    continue
                payload = payload_for(conn.viewer)
                if event.name == "notification" and conn.subs.get(hit[0]) == ["user"] and len(hit) > 1:
                    hit = hit[:1]
                for key in hit[:1] if conn.transport == "sse" else hit:
                    conn.queue.put_nowait((conn.subs[key], event.name, payload))


def sse_frame(event: str, payload: str) -> bytes:
    return f"event: {event}\ndata: {payload}\n\n".encode()


def ws_frame(stream: list[str], event: str, payload: str) -> str:
    return json.dumps({"stream": stream, "event": event, "payload": payload})
