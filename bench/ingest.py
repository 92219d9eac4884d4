"""Items 1-3 and 6: the Bluesky ingest paths on a recorded corpus.

- the bot's firehose path: `FirehoseSource` with its `Prefilter`, `_handle` (libipld decode of the
  frames that pass, `Rules`), `Ingest.handle` and the cursor saved every `SAVE_EVERY` frames, up
  to the events the curation core receives (`PostSeen`, `PostDeleted`);
- the SDK's documented loop: `Frame.from_bytes` + `parse_subscribe_repos_message` into the SDK's
  message model, `CAR.from_bytes`, `models.get_or_create` for every op, then the same tests on
  the models, and the same `Ingest.handle` for what they accept;
- the bot's Jetstream path on the same events as Jetstream JSON lines;
- end to end, each client (the bot's `FirehoseSource.run`, the SDK's `FirehoseSubscribeReposClient`)
  reading the corpus from `bench.serve`, a websocket server in another process.

Enrichment (profiles, follows) is stubbed with constants: in a steady state it is cached, and it
is the same for both paths.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from os import PathLike
from pathlib import Path as FilePath
from typing import Any

from bot.bluesky.detect import FOLLOW, HASHTAG, MENTION_FACET, POST, TAG_FACET, Hit, Prefilter, Rules
from bot.bluesky.firehose import FirehoseSource
from bot.bluesky.ingest import Ingest
from bot.bluesky.jetstream import JetstreamSource
from bot.bluesky.stream import SAVE_EVERY, StreamSource
from bot.store import Store

TAG = "numpolville"
ROOT = FilePath(__file__).parent.parent
RUNS = 5  # each throughput is the best of RUNS runs (after a warm-up run)
BATCH = 256  # messages per batch in process: what one 1 MiB socket read of a busy stream brings, or less


class BenchIngest(Ingest):
    """The real `Ingest`, with the AppView lookups answered by constants."""

    def _profile(self, did: str) -> dict[str, Any]:
        return {"handle": did, "bio": "", "labels": ()}

    def _follows_bot(self, did: str) -> bool:
        return True


@dataclass
class Path:
    """One way from messages to events, fresh state (tracked posts, cursor) per instance."""

    name: str
    run: Callable[[Iterable[bytes]], int]
    events: list[Any] = field(default_factory=list)
    keep: bool = True  # keep the events, else count them and let them go
    dropped: int = 0

    def emit(self, event: Any) -> None:
        """Where the events go: kept to be compared, or let go as the curation core consumes
        them (a list of every event of a long run would grow, and the GC would walk it)."""
        if self.keep:
            self.events.append(event)
        else:
            self.dropped += 1


def _source(kind: str, bot_did: str, tag: str = TAG) -> StreamSource:
    store = Store(":memory:")
    ingest = BenchIngest(None, Rules(tag, bot_did), store)
    if kind == "firehose":
        return FirehoseSource("ws://127.0.0.1:1", ingest, store, Prefilter(ingest.rules))
    return JetstreamSource("ws://127.0.0.1:1", ingest, store, Prefilter(ingest.rules, json_text=True))


def bot_path(kind: str, bot_did: str, tag: str = TAG, keep_events: bool = True) -> Path:
    """`StreamSource.run` minus the socket: the messages in batches of `BATCH` (what one socket
    read brings when the stream outpaces the bot), each through `StreamSource.consume`, the very
    code `run` calls (batch pre-filter, decoding, rules, ingest, cursor saves)."""
    src = _source(kind, bot_did, tag)
    path = Path(f"bot {kind}", lambda _: 0, keep=keep_events)
    emit = path.emit
    consume = src.consume

    def run(messages: Iterable[bytes]) -> int:
        n = 0
        it = iter(messages)
        while batch := list(islice(it, BATCH)):
            consume(batch, emit)
            n += len(batch)
        return n

    path.run = run
    return path


# ---- the SDK's loop ----------------------------------------------------------------------------

def _model_tags(rec: Any) -> set[str]:
    tags = {t.casefold().lstrip("#") for t in (getattr(rec, "tags", None) or ()) if isinstance(t, str)}
    for facet in getattr(rec, "facets", None) or ():
        for f in getattr(facet, "features", None) or ():
            if getattr(f, "py_type", None) == TAG_FACET and isinstance(getattr(f, "tag", None), str):
                tags.add(f.tag.casefold().lstrip("#"))
    text = getattr(rec, "text", None)
    if isinstance(text, str) and ("#" in text or "＃" in text):
        tags.update(HASHTAG.findall(text.casefold()))
    return tags


def _model_wants_post(rec: Any, tags: set[str], tag: str, bot_did: str) -> bool:
    if tag in tags:
        return True
    reply = getattr(rec, "reply", None)
    parent = getattr(getattr(reply, "parent", None), "uri", None)
    if isinstance(parent, str) and parent.startswith(f"at://{bot_did}/"):
        return True
    return any(getattr(f, "py_type", None) == MENTION_FACET and getattr(f, "did", None) == bot_did
               for facet in getattr(rec, "facets", None) or ()
               for f in getattr(facet, "features", None) or ())


def sdk_hits(msg: Any, tracked: Any, tag: str, bot_did: str) -> Iterator[Hit]:
    """The SDK's documented handling of one commit: decode its CAR, build every op's model with
    `models.get_or_create`, then the same tests as the bot's rules."""
    from atproto import CAR, models

    car = CAR.from_bytes(msg.blocks) if msg.blocks else None
    for op in msg.ops:
        collection, _, rkey = op.path.partition("/")
        rec, raw = None, dict[str, Any]()
        if op.cid is not None and car is not None:
            raw = car.blocks.get(op.cid) or {}
            rec = models.get_or_create(raw, strict=False) if raw else None
        if op.action == "create" and isinstance(rec, models.AppBskyFeedPost.Record):
            tags = _model_tags(rec)
            if _model_wants_post(rec, tags, tag, bot_did):
                yield Hit("post", msg.repo, rkey, str(op.cid), raw, frozenset(tags))
        elif op.action == "delete" and collection == POST and (msg.repo, rkey) in tracked:
            yield Hit("delete", msg.repo, rkey)
        elif (op.action == "create" and isinstance(rec, models.AppBskyGraphFollow.Record)
              and rec.subject == bot_did):
            yield Hit("follow", msg.repo, rkey, str(op.cid), raw)


def sdk_path(bot_did: str, tag: str = TAG) -> Path:
    from atproto import models, parse_subscribe_repos_message
    from atproto_subscription.frames import ErrorFrame, Frame

    src = _source("firehose", bot_did, tag)
    ingest, store = src.ingest, src.store
    rules = ingest.rules
    path = Path("SDK firehose", lambda _: 0)
    emit = path.emit
    Commit = models.ComAtprotoSyncSubscribeRepos.Commit

    def run(messages: Iterable[bytes]) -> int:
        n = unsaved = 0
        last = None
        for message in messages:
            n += 1
            frame = Frame.from_bytes(message)
            if isinstance(frame, ErrorFrame):
                raise RuntimeError(f"{frame.body.error}: {frame.body.message}")
            msg = parse_subscribe_repos_message(frame)
            last, unsaved = msg, unsaved + 1
            if unsaved >= SAVE_EVERY:
                store.set_cursor("bluesky", "firehose", str(last.seq))
                unsaved = 0
            if isinstance(msg, Commit):
                for hit in sdk_hits(msg, rules.tracked, rules.tag, bot_did):
                    ingest.handle(hit, emit)
        return n

    path.run = run
    return path


def loop(frames: list[bytes], total: int) -> Iterable[bytes]:
    """`total` messages, the corpus over and over (a C-level iterator: the replay costs nothing
    that the socket would not)."""
    return islice(chain.from_iterable(repeat(frames)), total)


def measure(path: Path, messages: list[bytes], total: int, runs: int = RUNS) -> dict[str, Any]:
    """Messages/s of `path` over `total` messages (the corpus looped). The first pass fixes the
    events of one pass of the corpus; the timed runs let theirs go."""
    path.run(messages)
    events = list(path.events)
    path.keep = False
    return timed(lambda: path.run(loop(messages, total)), runs) | {
        "events_per_pass": len(events), "events": events}


def timed(run: Callable[[], int], runs: int) -> dict[str, Any]:
    """`run` (which returns how many messages it handled) `runs` times after one untimed run:
    the best rate, as timeit reports (a shared virtual machine only ever slows a run down), and
    the median beside it. The untimed run warms the process up: here a fresh process's first
    half-second runs up to a third slower (its memory is first touched, on the host too)."""
    run()
    times, n = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        n = run()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {"messages": n, "seconds": best, "per_second": n / best, "us_per_message": best / n * 1e6,
            "median_per_second": n / statistics.median(times), "runs": runs}


# ---- item 3: end to end over loopback ----------------------------------------------------------

@contextmanager
def served(corpus: PathLike, total: int) -> Iterator[str]:
    """The URL of a `bench.serve` process sending `total` frames of `corpus` per connection."""
    server = subprocess.Popen([sys.executable, "-m", "bench.serve", str(corpus), str(total)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


def end_to_end_bot(corpus: PathLike, total: int, bot_did: str, runs: int = RUNS) -> dict[str, Any]:
    """The bot's real `FirehoseSource.run` (websockets client, pre-filter, decode, ingest, cursor)
    reading `total` frames from a loopback server, a fresh source each run."""
    from websockets.exceptions import ConnectionClosed

    events: list[Any] = []

    def run(url: str) -> int:
        src = _source("firehose", bot_did)
        src.base_url = url
        events.clear()
        try:
            src.run(events.append, threading.Event())
        except ConnectionClosed:
            pass
        return total

    with served(corpus, total) as url:
        return timed(lambda: run(url), runs) | {"events": len(events)}


def end_to_end_sdk(corpus: PathLike, total: int, bot_did: str, runs: int = RUNS) -> dict[str, Any]:
    """The SDK's own client (`FirehoseSubscribeReposClient.start`) and the SDK loop as its callback."""
    from atproto import FirehoseSubscribeReposClient

    events = 0

    def run(url: str) -> int:
        nonlocal events
        sdk = sdk_path(bot_did)
        handle = _sdk_after_frame(bot_did, sdk)  # the SDK calls back with a parsed MessageFrame
        client = FirehoseSubscribeReposClient(base_uri=url + "/xrpc")
        count = 0

        def on_message(frame: Any) -> None:
            nonlocal count
            handle(frame)
            count += 1
            if count >= total:
                client.stop()

        client.start(on_message)
        events = len(sdk.events)
        return count

    with served(corpus, total) as url:
        return timed(lambda: run(url), runs) | {"events": events}


def _sdk_after_frame(bot_did: str, path: Path) -> Callable[[Any], None]:
    """The SDK loop from a parsed frame on (what the SDK client's callback gets)."""
    from atproto import models, parse_subscribe_repos_message

    src = _source("firehose", bot_did)
    ingest = src.ingest
    rules = ingest.rules
    emit = path.emit
    Commit = models.ComAtprotoSyncSubscribeRepos.Commit

    def one(frame: Any) -> None:
        msg = parse_subscribe_repos_message(frame)
        if isinstance(msg, Commit):
            for hit in sdk_hits(msg, rules.tracked, rules.tag, bot_did):
                ingest.handle(hit, emit)
    return one


__all__ = ["FOLLOW", "bot_path", "sdk_path", "measure", "loop", "end_to_end_bot", "end_to_end_sdk"]
