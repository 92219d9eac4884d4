"""Item 4: post -> prompt visible on the server, p50/p95 over `POSTS` posts by a follower.

The bot runs in process exactly as `numpolville run` would (`Runtime(config, store,
build_adapters(config, store))`), against the local servers the tests use:

- the local Mastodon-API server (`tests/mastodon_server`) as each server family
  (`flavours.py`): Mastodon and Akkoma through their hashtag stream, GoToSocial (whose hashtag
  stream is never fed) through the followed tag on the user stream, then GoToSocial without the
  followed tag and Mastodon with `streaming = false`, where only the poll (`poll_interval` 1 s)
  is left; the prompt is visible when the server stores the bot's reply (a listener on the
  server's state, so the clock stops inside the server, not at our next look);
- the local Bluesky network (`tests/bsky_network.py`: PLC + PDS + AppView), the bot on the PDS
  firehose; the prompt is visible when the PDS sequences the bot's commit creating it (read from
  the PDS firehose by a watcher of our own).

Posts are sequential: each one waits for its prompt (or a timeout, reported as a miss), then a
random pause, so this measures latency, not throughput. In polling mode the pause spans a whole
poll interval, so posts land at every phase of the poll.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POSTS = 50
TAG = "numpolville"
TIMEOUT = 15.0
POLL_INTERVAL = 1.0


def _summary(latencies: list[float], misses: int, **extra: Any) -> dict[str, Any]:
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=20, method="inclusive") if len(lat) > 1 else lat * 19
    return {"posts": len(lat) + misses, "missed": misses, "p50": statistics.median(lat),
            "p95": q[18], "max": lat[-1], "mean": statistics.fmean(lat), **extra}


# ---- Mastodon -----------------------------------------------------------------------------------

def mastodon(streaming: bool, posts: int = POSTS, seed: int = 8, flavour: str = "mastodon",
             follow_tag: bool = True) -> dict[str, Any]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bot.config import parse
    from bot.runtime import Runtime, build_adapters
    from bot.store import Store
    from tests.mastodon_server import MastodonServer
    from tests.mastodon_server.state import Event
    from tests.test_faults_support import wait_for

    rng = random.Random(seed)
    with MastodonServer(heartbeat=0.5, flavour=flavour) as server, tempfile.TemporaryDirectory() as d:
        server.streaming_enabled = streaming
        bot_id, token = server.create_account("numpolvillebot", note=f"Je range les partages #{TAG}")
        server.create_account("alice", note="alice's bio")
        server.follow("alice", "numpolvillebot")

        seen: dict[str, float] = {}  # status id answered -> perf_counter when the prompt was stored
        waiting: dict[str, threading.Event] = {}

        def listener(ev: Event) -> None:
            st = ev.status
            if ev.name == "update" and st is not None and st.account_id == bot_id and st.in_reply_to_id:
                seen.setdefault(st.in_reply_to_id, time.perf_counter())
                if st.in_reply_to_id in waiting:
                    waiting[st.in_reply_to_id].set()

        server.world.listeners.append(listener)
        config = parse({"hashtag": TAG, "language": "fr", "database": f"{d}/bot.db",
                        "mastodon": {"enabled": True, "api_base_url": server.base_url,
                                     "access_token": token, "poll_interval": POLL_INTERVAL,
                                     "streaming": streaming,  # polling as configured, no fallback
                                     "follow_tag": follow_tag},
                        "policy": {"prompt": "followers", "acknowledge": "favourite",
                                   "max_prompts_per_author_per_day": 10 * posts}})
        store = Store(Path(d) / "bot.db")
        runtime = Runtime(config, store, build_adapters(config, store))
        runtime.start()
        probe = Store(Path(d) / "bot.db")
        try:
            wait_for(lambda: all(probe.cursor("mastodon", k) is not None for k in ("tag", "notifications"))
                     and (not streaming or server.open_streams() >= 2), 20.0, "the bot to listen", 0.02)
            time.sleep(0.5)
            latencies, misses = [], 0
            for i in range(posts):
                done = threading.Event()
                t0 = time.perf_counter()
                # the listener may fire before `waiting` knows the id: `seen` catches that case
                status = server.post("alice", f"Lien n°{i} https://example.org/lat/{seed}/{i} #{TAG}")
                waiting[status["id"]] = done
                if status["id"] in seen or done.wait(TIMEOUT):
                    latencies.append(seen[status["id"]] - t0)
                else:
                    misses += 1
                time.sleep(rng.uniform(0.1, 0.3) if streaming else rng.uniform(0.1, 0.1 + POLL_INTERVAL))
            return _summary(latencies, misses, streams_open=server.open_streams(),
                            **_reconciliation(server, latencies, posts))
        finally:
            runtime.shutdown(timeout=2.0)
            store.close()
            probe.close()


def _reconciliation(server: Any, latencies: list[float], posts: int) -> dict[str, Any]:
    """What polling costs: the tag timeline and notification reads per poll interval, scaled to
    the default interval (60 s) as requests per hour, beside Mastodon's budget (300 / 5 min)."""
    reads = server.requests("GET", r"/api/v1/(timelines/tag/|notifications)")
    if len(reads) < 2:
        return {}
    span = reads[-1]["time"] - reads[0]["time"]
    per_interval = len(reads) / (span / POLL_INTERVAL) if span else 0.0
    return {"polls_per_interval": per_interval, "requests_per_hour_at_60s": per_interval * 60,
            "budget_per_hour": 3600}


# ---- Bluesky ------------------------------------------------------------------------------------

class _CommitWatcher:
    """Reads the PDS firehose and notes when each record path of one repository is created."""

    def __init__(self, url: str, did: str) -> None:
        self.url, self.did = url, did
        self.created: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="latency-watcher")
        self.thread.start()
        if not self.ready.wait(10):
            raise TimeoutError("the PDS firehose did not open")

    def _run(self) -> None:
        import libipld
        from websockets.sync.client import connect

        with connect(self.url, max_size=None, proxy=None, compression=None) as ws:
            self.ready.set()
            while not self.stop.is_set():
                try:
                    frame = ws.recv(timeout=0.2, decode=False)
                except TimeoutError:
                    continue
                now = time.perf_counter()
                header, body = libipld.decode_dag_cbor_multi(frame)
                if header.get("t") != "#commit" or body.get("repo") != self.did:
                    continue
                with self.cond:
                    for op in body.get("ops") or ():
                        if op.get("action") == "create":
                            self.created.setdefault(op["path"], now)
                    self.cond.notify_all()

    def wait(self, path: str, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: path in self.created, timeout)
            return self.created.get(path)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


def bluesky(posts: int = POSTS, seed: int = 8) -> dict[str, Any]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from atproto import models

    from bot.bluesky.records import record_key
    from bot.config import parse
    from bot.runtime import Runtime, build_adapters
    from bot.store import Store
    from tests.bsky_network import BlueskyNetwork
    from tests.test_faults_support import wait_for

    rng = random.Random(seed)
    net = BlueskyNetwork().start()
    try:
        if not net.has_appview:
            raise RuntimeError("the local Bluesky network runs without AppView (PostgreSQL)")
        bot_did = net.did("bot")
        alice = net.client("alice")
        alice.follow(bot_did)
        watcher = _CommitWatcher(net.firehose_url, bot_did)
        with tempfile.TemporaryDirectory() as d:
            acc = net.accounts["bot"]
            config = parse({"database": f"{d}/bot.db",
                            "bluesky": {"enabled": True, "service": net.pds_url, "handle": acc["handle"],
                                        "app_password": acc["password"], "source": "firehose",
                                        "firehose_url": net.firehose_url},
                            "policy": {"max_prompts_per_author_per_day": 10 * posts}})
            store = Store(Path(d) / "bot.db")
            runtime = Runtime(config, store, build_adapters(config, store))
            runtime.start()
            try:
                adapter = runtime.adapters[0]
                wait_for(lambda: all(s.ws for s in adapter.streams),  # type: ignore[attr-defined]
                         20.0, "the stream is connected", 0.02)
                latencies, misses = [], 0
                for i in range(posts):
                    text = f"Lien n°{i} https://example.org/lat/{seed}/{i}"
                    body = f"{text} #NumPolVille"
                    start = len(f"{text} ".encode())
                    facet = models.AppBskyRichtextFacet.Main(
                        index=models.AppBskyRichtextFacet.ByteSlice(byte_start=start,
                                                                    byte_end=len(body.encode())),
                        features=[models.AppBskyRichtextFacet.Tag(tag="NumPolVille")])
                    t0 = time.perf_counter()
                    ref = alice.send_post(text=body, facets=[facet])
                    path = f"app.bsky.feed.post/{record_key('prompt', ref.uri)}"
                    seen = watcher.wait(path, TIMEOUT)
                    if seen is None:
                        misses += 1
                    else:
                        latencies.append(seen - t0)
                    time.sleep(rng.uniform(0.1, 0.3))
                return _summary(latencies, misses, network_start_s=net.startup_seconds)
            finally:
                runtime.shutdown()
                store.close()
                watcher.close()
    finally:
        net.stop()


def run(posts: int = POSTS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, fn in (("mastodon_streaming", lambda: mastodon(True, posts)),
                     ("akkoma_streaming", lambda: mastodon(True, posts, flavour="akkoma")),
                     ("gotosocial_followed_tag", lambda: mastodon(True, posts, flavour="gotosocial")),
                     ("gotosocial_nothing_live", lambda: mastodon(True, posts, flavour="gotosocial",
                                                                  follow_tag=False)),
                     ("mastodon_polling", lambda: mastodon(False, posts)),
                     ("bluesky", lambda: bluesky(posts))):
        print(f"…   latency {name}", file=sys.stderr, flush=True)
        try:
            out[name] = fn()
        except Exception as e:  # one failed mode is reported, the others still run
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else POSTS), indent=1))
