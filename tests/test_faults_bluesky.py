"""Bluesky faults on the reference network (local PLC + PDS + AppView, the session's
`bsky_network`): the PDS's firehose gone and back mid-burst, the websocket cut without a close
frame, and malformed frames / Jetstream lines on the real stream path.

The bot is the real in-process `Runtime` + `BlueskyAdapter` (as in `test_bluesky_e2e.py`); the
faults are put between it and the PDS by `StreamProxy`, a TCP proxy on 127.0.0.1 in front of the
PDS's port that only the bot's `firehose_url` points at (the SDK talks to the PDS endpoint of the
DID document, so writes and AppView reads stay direct). Each burst scenario ends with
`check_bluesky`: every post one item, classified with its answer, one prompt per post in the bot's
repository (`listRecords`, reply.parent), one repost per post, one like per answer, no intent
pending or failed.

Not done here: restarting the PDS process itself. dev-env's `TestPds.create` makes new keys and a
new data directory, so a "restart" would be a different PDS, and the AppView's subscription to it
would have to be re-created: the proxy going away and coming back on the same port is what the bot
sees of a PDS restart (refused connections, then a firehose resumed from the saved cursor).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libipld
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import serve

from bot.bluesky.detect import POST
from tests.bsky_network import BlueskyNetwork
from tests.test_bluesky_e2e import Bot, JetstreamReplay, answer, tagged, wait
from tests.test_bluesky_frames import car, cid_of, jetstream_message
from tests.test_faults_support import wait_for

CATEGORY = {"1": "projet", "2": "contexte", "3": "initiative", "4": "prospective"}
LIKE, REPOST = "app.bsky.feed.like", "app.bsky.feed.repost"


# ---- pieces ---------------------------------------------------------------------------------------

class StreamProxy:
    """A TCP proxy on 127.0.0.1:<port> to the PDS. `cut()` resets every open connection (RST, no
    websocket close frame) and keeps listening; `down()` also closes the listening socket (new
    connections are refused, as while a PDS restarts); `up()` listens again on the same port. The
    first line of each request (`GET /xrpc/...?cursor=N`) is kept, to see the cursor come back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = 0
        self.requests: list[str] = []
        self.conns: list[tuple[socket.socket, socket.socket]] = []
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True, name="proxy-accept").start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self._lock:
                self.conns.append(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True, name="proxy-pump").start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        first = True
        try:
            while True:
                with self._lock:
                    if pair not in self.conns:
                        return  # cut: the sockets are already reset
                ready, _, _ = select.select([client, upstream], [], [], 0.05)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if s is client and first:
                        first = False
                        self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                    (upstream if s is client else client).sendall(data)
        except (OSError, ValueError):
            with self._lock:
                if pair in self.conns:
                    self.conns.remove(pair)
            for s in pair:
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> int:
        """Reset every open connection; returns how many there were."""
        with self._lock:
            pairs, self.conns = self.conns, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()  # linger 0: RST, the bot reads no close frame
        self.cuts += len(pairs)
        return len(pairs)

    def down(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.cut()

    def open(self) -> int:
        with self._lock:
            return len(self.conns)

    def cursors(self) -> list[str | None]:
        """The cursor asked for by each connection, in order (None: from now)."""
        out = []
        for line in self.requests:
            query = parse_qs(urlsplit(line.split(" ")[1]).query)
            out.append(query.get("cursor", [None])[0])
        return out

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/xrpc/com.atproto.sync.subscribeRepos"

    def close(self) -> None:
        self.down()


def count(bot: Bot, sql: str, *args: Any) -> int:
    return bot.store._all(sql, *args)[0]["n"]


def item(bot: Bot, uri: str) -> dict[str, Any] | None:
    """The item's row, read under the store's lock (the bot's threads share its connection)."""
    found = bot.store._all("SELECT * FROM items WHERE uri = ?", uri)
    return found[0] if found else None


def reconnected(bot: Bot, proxy: StreamProxy, opened: int) -> bool:
    """A new request went through the proxy and its websocket handshake is done (the old run has
    ended before the new connection was made, so `ws` is the new one)."""
    stream = bot.runtime.adapters[0].streams[0]  # type: ignore[union-attr, attr-defined]
    return len(proxy.requests) > opened and stream.ws is not None


def list_records(client: Any, did: str, collection: str) -> list[Any]:
    out, cursor = [], None
    while True:
        page = client.com.atproto.repo.list_records(
            {"repo": did, "collection": collection, "limit": 100, "cursor": cursor})
        out += page.records
        cursor = page.cursor
        if not cursor or not page.records:
            return out


class Burst:
    """alice posts `count` tagged posts (`pause` s apart) and answers every prompt of the bot to
    them (found in the bot's repository, as a person would find it) with a category number."""

    def __init__(self, net: BlueskyNetwork, people: dict[str, Any], count: int = 30,
                 pause: float = 0.1) -> None:
        self.net, self.people, self.count, self.pause = net, people, count, pause
        self.run = time.time_ns()
        self.posts: dict[str, str] = {}  # post uri -> answer text
        self.posted_at: dict[str, float] = {}
        self.answers: dict[str, str] = {}  # post uri -> answer uri
        self.stopped = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._guard(self._post), daemon=True),
                        threading.Thread(target=self._guard(self._answer), daemon=True)]

    def start(self) -> Burst:
        for t in self.threads:
            t.start()
        return self

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported by close()
                self.errors.append(e)
        return run

    def _post(self) -> None:
        for n in range(self.count):
            post = tagged(self.people["alice"], f"Rafale {self.run} n°{n}")
            self.posts[post.uri] = str(n % 4 + 1)
            self.posted_at[post.uri] = time.monotonic()
            time.sleep(self.pause)

    def _answer(self) -> None:
        bot_did = self.net.did("bot")
        while not self.stopped.is_set():
            for prompt in list_records(self.people["bot"], bot_did, POST):
                parent = prompt.value.reply.parent.uri if prompt.value.reply else None
                if parent in self.posts and parent not in self.answers:
                    self.answers[parent] = answer(self.net, self.people["alice"], prompt.uri,
                                                  self.posts[parent]).uri
            if len(self.answers) == self.count:
                return
            self.stopped.wait(0.2)

    def done(self, bot: Bot) -> bool:
        uris = list(self.posts)
        if len(uris) < self.count or len(self.answers) < self.count:
            return False
        marks = ",".join("?" * len(uris))
        done = count(bot, f"SELECT count(*) AS n FROM items WHERE uri IN ({marks}) AND state = 'classified' "
                          "AND boost_ref IS NOT NULL", *uris)
        pending = count(bot, "SELECT count(*) AS n FROM intents WHERE state = 'pending'")
        return done == self.count and pending == 0

    def seen(self, bot: Bot) -> int:
        return count(bot, "SELECT count(*) AS n FROM items WHERE text LIKE ?", f"Rafale {self.run}%")

    def close(self) -> None:
        self.stopped.set()
        for t in self.threads:
            t.join(15)
        assert not self.errors, self.errors


def check_bluesky(net: BlueskyNetwork, people: dict[str, Any], bot: Bot, burst: Burst) -> dict[str, int]:
    """None lost, none duplicated, no second prompt, repost or like in the bot's repository."""
    bot_did, client = net.did("bot"), people["bot"]
    posts = set(burst.posts)
    rows = {r["uri"]: r for r in bot.store._all("SELECT * FROM items WHERE text LIKE ?",
                                                f"Rafale {burst.run}%")}
    assert set(rows) == posts, "items in the store are exactly the posts made"
    for uri, text in burst.posts.items():
        r = rows[uri]
        assert (r["state"], r["category"]) == ("classified", CATEGORY[text]), dict(r)
        assert r["prompt_uri"] and r["boost_ref"], dict(r)
    prompts = collections.Counter(
        p.value.reply.parent.uri for p in list_records(client, bot_did, POST)
        if p.value.reply and p.value.reply.parent.uri in posts)
    assert prompts == collections.Counter(posts), "exactly one prompt per post in the bot's repository"
    answers = set(burst.answers.values())
    replies_to_answers = [p for p in list_records(client, bot_did, POST)
                          if p.value.reply and p.value.reply.parent.uri in answers]
    assert replies_to_answers == [], "no 'not understood' to a valid answer"
    reposts = collections.Counter(r.value.subject.uri for r in list_records(client, bot_did, REPOST)
                                  if r.value.subject.uri in posts)
    assert reposts == collections.Counter(posts), "exactly one repost per post"
    likes = collections.Counter(r.value.subject.uri for r in list_records(client, bot_did, LIKE)
                                if r.value.subject.uri in answers)
    assert likes == collections.Counter(answers), "every answer liked once"
    states = {r["state"]: r["n"] for r in bot.store._all(
        "SELECT state, count(*) AS n FROM intents GROUP BY state")}
    assert states.get("pending", 0) == 0 and states.get("failed", 0) == 0, states
    return {"items": len(rows), "prompts": sum(prompts.values()), "reposts": sum(reposts.values()),
            "likes": sum(likes.values()), "intents_done": states.get("done", 0)}


def diagnose(bot: Bot, burst: Burst) -> str:
    items = bot.store._all("SELECT state, count(*), count(boost_ref) FROM items WHERE text LIKE ? "
                           "GROUP BY state", f"Rafale {burst.run}%")
    intents = bot.store._all("SELECT kind, state, count(*), max(error) FROM intents GROUP BY kind, state")
    return (f"{len(burst.posts)} posted, {len(burst.answers)} answered; items {items}; "
            f"intents {intents}; errors {burst.errors}")


# ---- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def people(bsky_network: BlueskyNetwork) -> Iterator[dict[str, Any]]:
    """alice follows the bot (undone afterwards: the network is shared by the session)."""
    if not bsky_network.has_appview:
        pytest.skip("the Bluesky tests need the AppView (PostgreSQL)")
    clients = {name: bsky_network.client(name) for name in ("bot", "alice", "carol")}
    follow = clients["alice"].follow(bsky_network.did("bot")).uri
    yield clients
    clients["alice"].delete_follow(follow)


@pytest.fixture
def bots(tmp_path: Path, bsky_network: BlueskyNetwork) -> Iterator[Callable[..., Bot]]:
    started: list[Bot] = []

    def make(**bluesky: Any) -> Bot:
        started.append(Bot(bsky_network, tmp_path / "bot.db", **bluesky))
        return started[-1].start()

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def proxy(bsky_network: BlueskyNetwork) -> Iterator[StreamProxy]:
    p = StreamProxy(urlsplit(bsky_network.pds_url).port)  # type: ignore[arg-type]
    yield p
    p.close()


# ---- 1 and 2: the firehose gone mid-burst -----------------------------------------------------------

def test_pds_gone_and_back_mid_burst(bots: Callable[..., Bot], proxy: StreamProxy, people: dict[str, Any],
                                     bsky_network: BlueskyNetwork) -> None:
    """The PDS's firehose refuses connections for 3 s (twice) while alice keeps posting: the posts
    made meanwhile come back through the saved cursor, none twice."""
    b = bots(firehose_url=proxy.url)
    burst = Burst(bsky_network, people, count=30, pause=0.15).start()
    downtimes: list[tuple[float, float]] = []
    try:
        for threshold in (6, 18):
            wait(lambda t=threshold: burst.seen(b) >= t, f"{threshold} posts seen", timeout=30)
            opened = len(proxy.requests)
            proxy.down()
            start = time.monotonic()
            time.sleep(3.0)
            proxy.up()
            downtimes.append((start, time.monotonic()))
            wait(lambda o=opened: reconnected(b, proxy, o), "the bot reconnected", timeout=20)
        wait_for(lambda: burst.done(b), timeout=60, what=lambda: diagnose(b, burst))
    finally:
        burst.close()
    during = [u for u, at in burst.posted_at.items() if any(s <= at <= e for s, e in downtimes)]
    assert during, "some posts were made while the firehose was away"
    cursors = proxy.cursors()
    assert len(cursors) >= 3 and all(c and int(c) > 0 for c in cursors[1:]), cursors  # resumed
    counts = check_bluesky(bsky_network, people, b, burst)
    print(f"\n2 outages of 3 s, {len(during)} posts made meanwhile, cursors asked {cursors}: {counts}")


def test_websocket_cut_without_close_frame(bots: Callable[..., Bot], proxy: StreamProxy,
                                           people: dict[str, Any], bsky_network: BlueskyNetwork) -> None:
    """The TCP connection reset three times mid-burst (no close frame): nothing lost, nothing twice."""
    b = bots(firehose_url=proxy.url)
    burst = Burst(bsky_network, people, count=30, pause=0.15).start()
    try:
        for threshold in (4, 12, 20):
            wait(lambda t=threshold: burst.seen(b) >= t, f"{threshold} posts seen", timeout=30)
            opened = len(proxy.requests)
            assert proxy.cut() == 1
            wait(lambda o=opened: reconnected(b, proxy, o), "the bot reconnected", timeout=20)
        wait_for(lambda: burst.done(b), timeout=60, what=lambda: diagnose(b, burst))
    finally:
        burst.close()
    cursors = proxy.cursors()
    assert len(cursors) == 4 and all(c and int(c) > 0 for c in cursors[1:]), cursors
    assert [int(c) for c in cursors[1:]] == sorted(int(c) for c in cursors[1:])  # never backwards
    health = b.store._all("SELECT * FROM sources WHERE name = 'firehose'")[0]
    assert health["reconnects"] == 3, dict(health)
    counts = check_bluesky(bsky_network, people, b, burst)
    print(f"\n3 resets, cursors asked {cursors}: {counts}")


# ---- 3: malformed input on the real stream path -------------------------------------------------------

class FrameServer:
    """A local firehose (or Jetstream): sends what is pushed, as binary (or text) frames, to the
    connection that is open, and remembers each connection's request path."""

    def __init__(self, text: bool = False) -> None:
        self.text = text
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.paths: list[str] = []
        self.server = serve(self._handle, "127.0.0.1", 0, compression=None, max_size=None)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/xrpc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, ws: Any) -> None:
        self.paths.append(ws.request.path)
        while True:
            try:
                ws.recv(timeout=0.01)
            except TimeoutError:
                pass
            except ConnectionClosed:
                return
            with contextlib.suppress(queue.Empty):
                frame = self.frames.get_nowait()
                ws.send(frame.decode() if self.text else frame)

    def push(self, *frames: bytes) -> None:
        for f in frames:
            self.frames.put(f)

    def drained(self) -> bool:
        return self.frames.empty()

    def close(self) -> None:
        self.server.shutdown()


def record_real_frame(net: BlueskyNetwork, post: Callable[[], Any]) -> tuple[Any, bytes]:
    """Make a post on the PDS and capture the firehose frame that carries it, as sent."""
    with connect(net.firehose_url, proxy=None, compression=None, max_size=None) as ws:
        created = post()
        rkey = created.uri.rsplit("/", 1)[1].encode()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame = ws.recv(timeout=10, decode=False)
            if rkey in frame and b"#commit" in frame:
                return created, frame
    raise AssertionError("the post's frame did not come")


def commit(repo: str | None, ops: list[dict[str, Any]], blocks: bytes, seq: int) -> bytes:
    header = libipld.encode_dag_cbor({"op": 1, "t": "#commit"})
    body = {"ops": ops, "rev": "3n3f2syutkk2v", "seq": seq, "time": "2026-01-01T00:00:00.000Z",
            "blobs": [], "blocks": blocks, "commit": cid_of(b"c"), "rebase": False, "tooBig": False}
    if repo is not None:
        body["repo"] = repo
    return header + libipld.encode_dag_cbor(body)


def post_record(text: str) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}


def one_post(repo: str | None, rkey: str, record: Any, seq: int) -> bytes:
    """A commit creating one post whose record block is `record` (any DAG-CBOR value)."""
    root = libipld.encode_dag_cbor({"did": repo or "x", "version": 3})
    block = libipld.encode_dag_cbor(record)
    return commit(repo, [{"action": "create", "path": f"{POST}/{rkey}", "cid": cid_of(block)}],
                  car([root, block]), seq)


def test_malformed_firehose_frames_are_skipped(bots: Callable[..., Bot], people: dict[str, Any],
                                               bsky_network: BlueskyNetwork,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="numpolville")
    alice, carol = bsky_network.did("alice"), bsky_network.did("carol")
    run = time.time_ns()
    valid, valid_frame = record_real_frame(
        bsky_network, lambda: tagged(people["alice"], f"Après les trames cassées {run}"))
    seq = libipld.decode_dag_cbor_multi(valid_frame)[1]["seq"]
    server = FrameServer()
    try:
        b = bots(firehose_url=server.url)
        rkeys = (f"3mal{n:09d}" for n in itertools.count())
        tag = f"#numpolville {run}"
        long_text = ("Un très long texte " * 6000)[:100_000] + f" {tag}"
        long_rkey = next(rkeys)
        header_only = libipld.encode_dag_cbor({"op": 1, "t": "#commit"})
        not_cbor = f"\xa3 {tag}".encode()  # a map of 3 pairs announced, then a text that is none
        bad = {
            "not CBOR at all": f"{tag} \xff".encode() + b"\xff\xfe",
            "a CAR that does not decode": commit(
                alice, [{"action": "create", "path": f"{POST}/{next(rkeys)}", "cid": cid_of(b"x")}],
                f"\x0a{tag} garbage".encode(), seq - 9),
            "a CAR block that does not decode": commit(
                alice, [{"action": "create", "path": f"{POST}/{next(rkeys)}", "cid": cid_of(not_cbor)}],
                car([libipld.encode_dag_cbor({"did": alice}), not_cbor]), seq - 8),
            "a truncated frame": valid_frame[:-40],
            "an unknown t": libipld.encode_dag_cbor({"op": 1, "t": "#future"})
            + libipld.encode_dag_cbor({"seq": seq - 7, "text": tag}),
            "an #info": libipld.encode_dag_cbor({"op": 1, "t": "#info"})
            + libipld.encode_dag_cbor({"name": "OutdatedCursor", "message": tag}),
            "a commit without repo": one_post(None, next(rkeys), post_record(tag), seq - 6),
            "a record that is not a map": one_post(alice, next(rkeys), tag, seq - 5),
            "an op without path": commit(alice, [{"action": "create", "cid": None, "text": tag}],
                                         car([libipld.encode_dag_cbor({})]), seq - 4),
            "a post 100 KB long": one_post(carol, long_rkey, post_record(long_text), seq - 3),
            "a header alone": header_only,
        }
        server.push(*bad.values())
        wait_for(server.drained, timeout=5, what="the frames sent")
        time.sleep(2.5)  # the cursor is saved on a quiet stream: the last message is the header alone
        server.push(valid_frame)
        prompted = wait_for(lambda: (r := item(b, valid.uri)) and r["prompt_uri"] and r, timeout=15,
                            what="the valid post after the bad frames prompted")
        assert prompted["text"] == f"Après les trames cassées {run} #NumPolVille"
        long = wait_for(lambda: item(b, f"at://{carol}/{POST}/{long_rkey}"), timeout=10,
                        what="the 100 KB post recorded")
        assert len(long["text"]) >= 100_000 and long["state"] == "seen" and long["prompt_uri"] is None
        items = b.store._all("SELECT uri FROM items WHERE text LIKE ?", f"%{run}%")
        assert sorted(r["uri"] for r in items) == sorted([valid.uri, long["uri"]])
        assert server.paths == ["/xrpc/com.atproto.sync.subscribeRepos"], "the source never restarted"
        health = b.store._all("SELECT * FROM sources WHERE name = 'firehose'")[0]
        assert health["reconnects"] == 0 and health["error"] is None, dict(health)
        wait_for(lambda: b.store.cursor("bluesky", "firehose") == str(seq), timeout=5,
                 what="the cursor of the valid frame saved")
        prompts = [p for p in list_records(people["bot"], bsky_network.did("bot"), POST)
                   if p.value.reply and p.value.reply.parent.uri == valid.uri]
        assert len(prompts) == 1
        skipped = caplog.text.count("does not decode")
        assert skipped >= 5, caplog.text
        print(f"\n{len(bad)} bad frames, {skipped} logged as not decoding; the valid post prompted")
    finally:
        server.close()


def test_malformed_jetstream_lines_are_skipped(bots: Callable[..., Bot], people: dict[str, Any],
                                               bsky_network: BlueskyNetwork,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="numpolville")
    alice = bsky_network.did("alice")
    run = time.time_ns()
    tag = f"#numpolville {run}"
    valid = tagged(people["alice"], f"Après les lignes cassées {run}")
    res = people["alice"].com.atproto.repo.get_record(
        {"repo": alice, "collection": POST, "rkey": valid.uri.rsplit("/", 1)[1]})
    record = {**res.value.model_dump(by_alias=True, exclude_none=True), "futureField": {"x": [1]}}
    t = time.time_ns() // 1000
    jet = JetstreamReplay()
    try:
        b = bots(source="jetstream", jetstream_url=jet.url)

        rkeys = (f"3mal{n:09d}" for n in itertools.count())

        def msg(text: str = tag, **changes: Any) -> bytes:
            event = json.loads(jetstream_message(alice, "create", f"{POST}/{next(rkeys)}",
                                                 post_record(text), t))
            for key, value in changes.items():
                where, _, name = key.rpartition("__")
                target = event["commit"] if where == "commit" else event
                if value is None:
                    target.pop(name, None)
                else:
                    target[name] = value
            return json.dumps(event).encode()

        lines = {
            "invalid JSON": msg()[:-30],
            "an unknown kind": msg(kind="futureKind"),
            "no did": msg(did=None),
            "no rkey": msg(commit__rkey=None),
            "no record": msg(commit__record=None),
            "a commit that is not an object": msg(commit=f"{tag}"),
            "a rkey that is not one": msg(commit__rkey="a/b"),
            "no time_us (an untagged post)": msg(text="rien à voir", time_us=None),
        }
        for line in lines.values():
            jet.messages.put(line)
        good = json.loads(jetstream_message(alice, "create", valid.uri.split("/", 3)[3], record, t + 1,
                                            cid=res.cid))
        good["futureTopLevel"] = True
        good["commit"]["futureCommitField"] = "x"
        jet.messages.put(json.dumps(good).encode())
        prompted = wait_for(lambda: (r := item(b, valid.uri)) and r["prompt_uri"] and r, timeout=15,
                            what="the valid Jetstream post prompted")
        assert prompted["text"].startswith(f"Après les lignes cassées {run}")
        items = b.store._all("SELECT uri FROM items WHERE text LIKE ?", f"%{run}%")
        assert [r["uri"] for r in items] == [valid.uri], "no item from a malformed line"
        assert len(jet.paths) == 1, "the source never restarted"
        time.sleep(2.5)
        assert b.store.cursor("bluesky", "jetstream") == str(t + 1)
        skipped = caplog.text.count("does not decode")
        assert skipped >= 2, caplog.text
        print(f"\n{len(lines)} bad lines, {skipped} logged as not decoding; the valid post prompted")
    finally:
        jet.close()
