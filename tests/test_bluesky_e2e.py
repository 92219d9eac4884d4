"""The bot end to end on the reference AT Protocol servers (local PLC + PDS + AppView): the real
Runtime, the real BlueskyAdapter and the unpatched atproto SDK over loopback.

Every write by a person waits until the post it replies to is visible in the AppView (a reply to
a post the AppView has not indexed is marked invalidReplyRoot); the bot's side does the same in
`_thread_record`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from atproto import models
from atproto_client.exceptions import AtProtocolError
from atproto_client.models.utils import get_model_as_dict
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from bot.adapter import PermanentError
from bot.bluesky.records import record_key
from bot.config import parse
from bot.model import Post, Prompt
from bot.runtime import Runtime, build_adapters
from bot.store import Store
from tests.bsky_network import BlueskyNetwork
from tests.test_bluesky_frames import jetstream_message

TAG = "numpolville"


def tagged(client: Any, text: str) -> Any:
    """`text #numpolville` with a tag facet (UTF-8 byte offsets)."""
    body = f"{text} #NumPolVille"
    start = len(f"{text} ".encode())
    facet = models.AppBskyRichtextFacet.Main(
        index=models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=len(body.encode())),
        features=[models.AppBskyRichtextFacet.Tag(tag="NumPolVille")])
    return client.send_post(text=body, facets=[facet])


def answer(net: BlueskyNetwork, client: Any, parent_uri: str, text: str) -> Any:
    """Reply to the bot's prompt once the AppView shows it, as a person would."""
    parent = net.wait_visible(parent_uri)
    root = parent.record.reply.root if parent.record.reply else models.create_strong_ref(parent)
    ref = models.AppBskyFeedPost.ReplyRef(parent=models.create_strong_ref(parent), root=root)
    return client.send_post(text=text, reply_to=ref)


def wait(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.05)


def row(store: Store, uri: str) -> dict[str, Any] | None:
    """Read under the store's lock: the bot's threads share its connection (sqlite-utils' savepoint
    of a query running in two threads at once fails with "no such savepoint")."""
    return store._one("SELECT * FROM items WHERE uri = ?", uri)


def bot_record(client: Any, did: str, collection: str, rkey: str) -> Any:
    try:
        return client.com.atproto.repo.get_record({"repo": did, "collection": collection, "rkey": rkey})
    except AtProtocolError:
        return None


class Bot:
    """A running bot (Runtime + BlueskyAdapter) on a store; restartable on the same store."""

    def __init__(self, net: BlueskyNetwork, db: Path, source: str = "firehose", **bluesky: Any) -> None:
        acc = net.accounts["bot"]
        self.config = parse({
            "database": str(db),
            "bluesky": {"enabled": True, "service": net.pds_url, "handle": acc["handle"],
                        "app_password": acc["password"], "source": source,
                        "firehose_url": net.firehose_url, **bluesky},
            "policy": {"max_prompts_per_author_per_day": 1000},
        })
        self.store = Store(db)
        self.runtime: Runtime | None = None

    def start(self) -> Bot:
        self.runtime = Runtime(self.config, self.store, build_adapters(self.config, self.store))
        self.runtime.start()
        adapter = self.runtime.adapters[0]
        if self.config.bluesky.source != "search":  # events before the socket is up come by cursor
            wait(lambda: all(s.ws for s in adapter.streams), "the stream is connected")  # type: ignore[attr-defined]
        return self

    def stop(self) -> None:
        if self.runtime:
            self.runtime.shutdown()
            self.runtime = None


@pytest.fixture
def bot_factory(tmp_path: Path, bsky_network: BlueskyNetwork) -> Iterator[Callable[..., Bot]]:
    if not bsky_network.has_appview:
        pytest.skip("the Bluesky tests need the AppView (PostgreSQL)")
    bots: list[Bot] = []

    def make(**kwargs: Any) -> Bot:
        bots.append(Bot(bsky_network, tmp_path / "bot.db", **kwargs))
        return bots[-1].start()

    yield make
    for b in bots:
        b.stop()


@pytest.fixture(scope="module")
def people(bsky_network: BlueskyNetwork) -> Iterator[dict[str, Any]]:
    """Logged-in clients; alice and dan follow the bot, bob and carol do not. The follows are
    undone afterwards: the network is shared by the whole session."""
    clients = {name: bsky_network.client(name) for name in ("bot", "alice", "bob", "carol", "dan")}
    follows = {name: clients[name].follow(bsky_network.did("bot")).uri for name in ("alice", "dan")}
    yield clients
    for name, uri in follows.items():
        clients[name].delete_follow(uri)


def test_prompt_answer_classify_repost_like(bot_factory: Callable[..., Bot], people: dict[str, Any],
                                           bsky_network: BlueskyNetwork) -> None:
    net, bot_did = bsky_network, bsky_network.did("bot")
    b = bot_factory()
    t0 = time.monotonic()
    post = tagged(people["alice"], f"Un jardin partagé 🌱 {time.time_ns()}")
    prompted = wait(lambda: (r := row(b.store, post.uri)) and r["prompt_uri"] and r, "prompted")
    latency = time.monotonic() - t0
    print(f"\nBluesky prompt latency (post -> prompt on the PDS): {latency * 1000:.0f} ms")

    rkey = prompted["prompt_uri"].rsplit("/", 1)[1]
    prompt = bot_record(people["bot"], bot_did, "app.bsky.feed.post", rkey)
    record = prompt.value
    handle = net.handle("alice")
    assert record.reply.parent.uri == post.uri and record.reply.root.uri == post.uri
    assert record.text.startswith(f"@{handle} ")
    mention = record.facets[0]
    assert (mention.index.byte_start, mention.index.byte_end) == (0, len(f"@{handle}".encode()))
    assert mention.features[0].did == net.did("alice")
    assert prompt.uri.endswith(record_key("prompt", post.uri))
    appview = net.appview_client()
    wait(lambda: [r.post.uri for r in appview.app.bsky.feed.get_post_thread(
        {"uri": post.uri, "depth": 1}).thread.replies] == [prompt.uri], "the prompt in alice's thread")

    bobs = answer(net, people["bob"], prompt.uri, "1")
    wait(lambda: b.store._all("SELECT * FROM events WHERE uri = ? AND action = 'ignore'",
                              bobs.uri), "bob's answer ignored")
    alices = answer(net, people["alice"], prompt.uri, "2")
    done = wait(lambda: (r := row(b.store, post.uri)) and r["boost_ref"] and r, "classified and reposted")
    assert (done["state"], done["category"], done["classified_by"]) == ("classified", "contexte", handle)
    repost = bot_record(people["bot"], bot_did, "app.bsky.feed.repost", record_key("repost", post.uri))
    assert repost.value.subject.uri == post.uri and done["boost_ref"] == repost.uri
    wait(lambda: bot_record(people["bot"], bot_did, "app.bsky.feed.like", record_key("like", alices.uri)),
         "alice's answer liked")
    wait(lambda: bot_did in [a.did for a in appview.app.bsky.feed.get_reposted_by({"uri": post.uri})
                             .reposted_by], "the repost is visible in the AppView")


def test_non_follower_recorded_only(bot_factory: Callable[..., Bot], people: dict[str, Any]) -> None:
    b = bot_factory()
    post = tagged(people["carol"], f"Pas abonnée {time.time_ns()}")
    seen = wait(lambda: row(b.store, post.uri), "recorded")
    assert seen["state"] == "seen" and seen["prompt_uri"] is None
    assert "neither follows nor mentions" in seen["reason"]
    # the cursor is saved while running too (a kill -9 then replays from there, losing nothing)
    wait(lambda: b.store.cursor("bluesky", "firehose"), "the firehose cursor saved", timeout=5)


def test_deleted_post_withdrawn_and_unreposted(bot_factory: Callable[..., Bot], people: dict[str, Any],
                                               bsky_network: BlueskyNetwork) -> None:
    b, bot_did = bot_factory(), bsky_network.did("bot")
    post = tagged(people["alice"], f"Un projet #Projet {time.time_ns()}")
    wait(lambda: (r := row(b.store, post.uri)) and r["boost_ref"], "classified by its own tag, reposted")
    people["alice"].delete_post(post.uri)
    gone = wait(lambda: (r := row(b.store, post.uri)) and r["state"] == "deleted" and r["boost_ref"] is None
                and r, "withdrawn and unreposted")
    assert gone["deleted"] == 1
    assert bot_record(people["bot"], bot_did, "app.bsky.feed.repost", record_key("repost", post.uri)) is None


def test_restart_in_the_middle_of_a_burst(bot_factory: Callable[..., Bot], people: dict[str, Any],
                                          bsky_network: BlueskyNetwork) -> None:
    b, bot_did, dan = bot_factory(), bsky_network.did("bot"), people["dan"]
    run = time.time_ns()
    uris: list[str] = []
    writer = threading.Thread(target=lambda: uris.extend(
        tagged(dan, f"Rafale {run} n°{i}").uri for i in range(50)))
    writer.start()
    wait(lambda: b.store._one("SELECT count(*) AS n FROM items WHERE text LIKE ?",
                              f"Rafale {run}%")["n"] >= 10, "the burst has begun")
    b.stop()  # in the middle: some posts seen, some prompted, the rest still to come
    writer.join()
    b.start()
    count = f"SELECT count(*) AS n FROM items WHERE text LIKE 'Rafale {run}%' AND prompt_uri IS NOT NULL"
    wait(lambda: b.store._one(count)["n"] == 50, "50 items prompted", timeout=40)
    items = f"SELECT count(*) AS n FROM items WHERE text LIKE 'Rafale {run}%'"
    assert b.store._one(items)["n"] == 50

    parents: list[str] = []
    cursor = None
    while True:  # every prompt the bot's repository holds for this burst, duplicates included
        page = people["bot"].com.atproto.repo.list_records(
            {"repo": bot_did, "collection": "app.bsky.feed.post", "limit": 100, "cursor": cursor})
        parents += [r.value.reply.parent.uri for r in page.records
                    if r.value.reply and r.value.reply.parent.uri in set(uris)]
        cursor = page.cursor
        if not cursor or not page.records:
            break
    assert len(parents) == 50 and set(parents) == set(uris)


# ---- the other sources ---------------------------------------------------------------------------

class JetstreamReplay:
    """A local Jetstream: serves the messages pushed to it, in the documented JSON format, as text
    frames, and remembers each connection's request path (to see the cursor come back)."""

    def __init__(self) -> None:
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.paths: list[str] = []
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/subscribe"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, ws: Any) -> None:
        self.paths.append(ws.request.path)
        while True:
            try:
                ws.recv(timeout=0.02)
            except TimeoutError:
                pass
            except ConnectionClosed:
                return
            with contextlib.suppress(queue.Empty):
                ws.send(self.messages.get_nowait().decode())

    def push(self, client: Any, uri: str, time_us: int) -> None:
        """Replay a real post as Jetstream would deliver it."""
        did, collection, rkey = uri.removeprefix("at://").split("/")
        res = client.com.atproto.repo.get_record({"repo": did, "collection": collection, "rkey": rkey})
        record = get_model_as_dict(res.value)
        self.messages.put(jetstream_message(did, "create", f"{collection}/{rkey}", record, time_us,
                                            cid=res.cid))

    def close(self) -> None:
        self.server.shutdown()


def test_jetstream_replay(bot_factory: Callable[..., Bot], people: dict[str, Any],
                          bsky_network: BlueskyNetwork) -> None:
    jet = JetstreamReplay()
    try:
        b = bot_factory(source="jetstream", jetstream_url=jet.url)
        noise = people["bob"].send_post(text="rien à voir")
        post = tagged(people["alice"], f"Via Jetstream {time.time_ns()}")
        t = time.time_ns() // 1000
        jet.push(people["bob"], noise.uri, t)
        jet.push(people["alice"], post.uri, t + 1)
        prompt_uri = wait(lambda: (r := row(b.store, post.uri)) and r["prompt_uri"], "prompted")
        assert row(b.store, noise.uri) is None
        reply = answer(bsky_network, people["alice"], prompt_uri, "3")
        jet.push(people["alice"], reply.uri, t + 2)
        done = wait(lambda: (r := row(b.store, post.uri)) and r["boost_ref"] and r, "classified")
        assert done["category"] == "initiative"
        b.stop()
        assert b.store.cursor("bluesky", "jetstream") == str(t + 2)
        b.start()
        wait(lambda: len(jet.paths) == 2, "reconnected")
        query = parse_qs(urlsplit(jet.paths[1]).query)
        assert query["wantedCollections"] == ["app.bsky.feed.post", "app.bsky.graph.follow"]
        assert query["cursor"] == [str(t + 2 - 5_000_000)]  # rewound 5 s
    finally:
        jet.close()


def test_search_mode(bot_factory: Callable[..., Bot], people: dict[str, Any],
                     bsky_network: BlueskyNetwork) -> None:
    b = bot_factory(source="search", poll_interval=0.3)
    post = people["alice"].send_post(text=f"Par la recherche {time.time_ns()} #{TAG}")
    prompt_uri = wait(lambda: (r := row(b.store, post.uri)) and r["prompt_uri"], "prompted from search")
    answer(bsky_network, people["alice"], prompt_uri, "4")  # found through the notifications
    done = wait(lambda: (r := row(b.store, post.uri)) and r["category"] and r, "classified")
    assert done["category"] == "prospective"


def test_threadgate_forbids_the_prompt(bot_factory: Callable[..., Bot], people: dict[str, Any],
                                       bsky_network: BlueskyNetwork) -> None:
    """A post whose threadgate allows nobody is recorded, and the prompt is given up with a reason."""
    b, alice, did = bot_factory(), people["alice"], bsky_network.did("alice")
    rkey = record_key("test", f"{time.time_ns()}")
    uri = f"at://{did}/app.bsky.feed.post/{rkey}"
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    alice.com.atproto.repo.apply_writes({"repo": did, "writes": [  # one commit: gate and post together
        {"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": rkey,
         "value": {"$type": "app.bsky.feed.post", "text": "Fil fermé #numpolville", "createdAt": now}},
        {"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.threadgate",
         "rkey": rkey, "value": {"$type": "app.bsky.feed.threadgate", "post": uri, "allow": [],
                                 "createdAt": now}}]})
    failed = wait(lambda: b.store._one(
        "SELECT * FROM intents WHERE uri = ? AND kind = 'prompt' AND state = 'failed'", uri),
        "the prompt given up", timeout=8)
    assert "threadgate" in failed["error"]
    assert row(b.store, uri)["prompt_uri"] is None


def test_session_saved_once_and_reused(bot_factory: Callable[..., Bot], tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture,
                                       bsky_network: BlueskyNetwork) -> None:
    caplog.set_level(logging.INFO, logger="numpolville.bluesky")
    b = bot_factory(source="search", poll_interval=30)
    saved = tmp_path / ".bluesky-session"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert bsky_network.accounts["bot"]["password"] not in saved.read_text()
    b.stop()
    caplog.clear()
    b.start()
    assert "session create saved" not in caplog.text  # no second createSession
    assert "logged in as" in caplog.text


def test_digest_thread_is_posted_once(bot_factory: Callable[..., Bot], people: dict[str, Any],
                                      bsky_network: BlueskyNetwork) -> None:
    b = bot_factory(source="search", poll_interval=30)
    adapter = b.runtime.adapters[0]  # type: ignore[union-attr]
    key = f"digest:{time.time_ns()}:bluesky"
    texts = ["Veille de la semaine : https://example.org/veille 📰", "1️⃣ Projet : 3 partages", "Fin"]
    refs = adapter.post_thread(texts, key)
    assert adapter.post_thread(texts, key) == refs  # a retry after a crash posts nothing new
    records = [people["bot"].com.atproto.repo.get_record(
        {"repo": bsky_network.did("bot"), "collection": "app.bsky.feed.post",
         "rkey": ref.split()[0].rsplit("/", 1)[1]}).value for ref in refs]
    assert [r.text for r in records] == texts
    assert records[0].facets[0].features[0].uri == "https://example.org/veille"
    assert records[2].reply.parent.uri == refs[1].split()[0]
    assert records[2].reply.root.uri == refs[0].split()[0]


def test_unclear_answer_gets_one_explanation(bot_factory: Callable[..., Bot], people: dict[str, Any],
                                             bsky_network: BlueskyNetwork) -> None:
    b, bot_did = bot_factory(), bsky_network.did("bot")
    post = tagged(people["alice"], f"Une question {time.time_ns()}")
    prompt_uri = wait(lambda: (r := row(b.store, post.uri)) and r["prompt_uri"], "prompted")
    unclear = answer(bsky_network, people["alice"], prompt_uri, "je ne sais pas trop")
    reply = wait(lambda: bot_record(people["bot"], bot_did, "app.bsky.feed.post",
                                    record_key("reply:not_understood", unclear.uri)), "explained")
    assert reply.value.reply.parent.uri == unclear.uri and reply.value.reply.root.uri == post.uri
    assert reply.value.text.startswith(f"@{bsky_network.handle('alice')} ")


def test_wrong_password_stops_the_bot(tmp_path: Path, bsky_network: BlueskyNetwork) -> None:
    bot = Bot(bsky_network, tmp_path / "other" / "bot.db")
    bot.config = replace(bot.config, bluesky=replace(bot.config.bluesky, password="not-the-password"))
    with pytest.raises(PermanentError, match="refused the login"):
        bot.start()
    assert not (tmp_path / "other" / ".bluesky-session").exists()


def test_prompt_for_a_vanished_post_is_given_up(bot_factory: Callable[..., Bot],
                                                bsky_network: BlueskyNetwork) -> None:
    """A post deleted before the bot could reply (or never indexed): given up, not retried forever."""
    b = bot_factory(source="search", poll_interval=30)
    adapter: Any = b.runtime.adapters[0]  # type: ignore[union-attr]
    alice = adapter.ingest.author(bsky_network.did("alice"), check_follow=False)
    uri = f"at://{alice.id}/app.bsky.feed.post/{record_key('test', str(time.time_ns()))}"
    cid = "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
    ghost = Post("bluesky", uri, f"{uri} {cid}", "", alice, "#numpolville", datetime.now(timezone.utc))
    with pytest.raises(PermanentError, match="not in the AppView"):
        adapter.perform(Prompt(ghost, "unlisted"))
