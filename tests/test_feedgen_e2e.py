"""The feeds end to end on the reference network (@atproto/dev-env: PLC, PDS, AppView).

The feed service runs under uvicorn on 127.0.0.1 as did:web:localhost%3APORT, which the dev AppView
resolves over HTTP; the bot publishes its generator records; a person calls app.bsky.feed.getFeed
through their PDS, which signs a service token for the feed service, and the AppView calls the
service with it and hydrates the posts. Posts are seeded in one applyWrites per author and enter
the store through the curator, as the bot's adapters would hand them over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import models
from starlette.applications import Starlette
from typer.testing import CliRunner

from bench.feeds import Key
from bot import model as m
from bot.bluesky.convert import split_uri, to_post
from bot.cli import app as cli
from bot.config import Config, parse
from bot.curator import Curator
from bot.feedgen.auth import KeyCache, sdk_resolver
from bot.feedgen.feeds import GET_SKELETON, feed_uri
from bot.feedgen.publish import publish
from bot.feedgen.routes import routes
from bot.store import Store
from tests.bsky_network import BlueskyNetwork, require_bsky
from tests.test_bluesky_profile import png
from tests.test_feedgen import bound_socket, serve

POST = "app.bsky.feed.post"


@dataclass
class World:
    net: BlueskyNetwork
    config: Config
    store: Store
    curator: Curator
    url: str
    resolved: list[str]  # DIDs whose key the service resolved (a token was checked)
    posts: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)  # category -> posts
    clients: dict[str, Any] = field(default_factory=dict)

    def feed(self, key: str) -> str:
        return feed_uri(self.net.did("bot"), key)

    def client(self, name: str) -> Any:
        if name not in self.clients:
            self.clients[name] = self.net.client(name)
        return self.clients[name]

    def expected(self, *categories: str) -> list[str]:
        """The uris of these categories' posts, newest first (createdAt, then uri), as seeded."""
        return [u for _, u in sorted((p for c in categories for p in self.posts[c]), reverse=True)]


def seed(world: World, name: str, entries: list[tuple[str, datetime]]) -> None:
    """Create posts (category, createdAt) for account `name` in one write, hand them to the
    curator classified (the post carries #category), and wait until the AppView shows them."""
    net, did = world.net, world.net.did(name)
    records = [{"$type": POST, "text": f"{i} {cat} #numpolville #{cat}",
                "createdAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
               for i, (cat, at) in enumerate(entries)]
    writes = [models.ComAtprotoRepoApplyWrites.Create(collection=POST, value=r) for r in records]
    results = world.client(name).com.atproto.repo.apply_writes({"repo": did, "writes": writes}).results
    author = m.Author("bluesky", did, net.handle(name))
    for (cat, _), record, res in zip(entries, records, results, strict=True):
        post = to_post(record, did, split_uri(res.uri)[2], res.cid, bot_did=net.did("bot"), author=author,
                       tags=frozenset({"numpolville", cat}))
        world.curator.handle(m.PostSeen(post))
        world.posts.setdefault(cat, []).append((post.created_at, post.uri))
    net.wait_visible(results[-1].uri)


@pytest.fixture(scope="module")
def world(bsky_network: BlueskyNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    net = bsky_network
    if not net.has_appview:
        if require_bsky():
            pytest.fail("the feed tests need the AppView (PostgreSQL)")
        pytest.skip("the feed tests need the AppView (PostgreSQL)")
    sock = bound_socket()
    url = f"http://localhost:{sock.getsockname()[1]}"
    db = tmp_path_factory.mktemp("feeds") / "db.sqlite"
    config = parse({"database": str(db), "web": {"public_url": url},
                    "bluesky": {"enabled": True, "service": net.pds_url, "handle": net.handle("bot"),
                                "feeds": {"enabled": True, "plc_directory": net.plc_url}}})
    store = Store(db)
    resolved: list[str] = []
    resolve = sdk_resolver(net.plc_url)

    async def recording(did: str, refresh: bool) -> str:
        resolved.append(did)
        return await resolve(did, refresh)

    app = Starlette(routes=routes(config, store, keys=KeyCache(recording)))
    with serve(app, sock):
        w = World(net, config, store, Curator(config, store), url, resolved)
        first = publish(w.client("bot"), net.did("bot"), config, store)
        assert [p.outcome for p in first] == ["created"] * 5
        now = datetime.now(timezone.utc).replace(microsecond=0)
        # a few posts of two categories by three people, interleaved in time
        seed(w, "alice", [("projet", now - timedelta(minutes=5)), ("contexte", now - timedelta(minutes=2))])
        seed(w, "bob", [("contexte", now - timedelta(minutes=4)), ("projet", now - timedelta(minutes=1))])
        seed(w, "carol", [("projet", now - timedelta(minutes=3))])
        # 120 posts in one category, two per second (ties on createdAt)
        seed(w, "dan", [("prospective", now - timedelta(hours=1, seconds=i // 2)) for i in range(120)])
        av = net.appview_client()
        net.wait_until(lambda: _generator(av, w.feed("prospective")), what="the generators indexed")
        yield w


def _generator(av: Any, uri: str) -> Any:
    try:
        return av.app.bsky.feed.get_feed_generator({"feed": uri})
    except Exception:  # noqa: BLE001 - not indexed yet
        return None


def get_feed(world: World, who: str, key: str, **params: Any) -> Any:
    return world.client(who).app.bsky.feed.get_feed({"feed": world.feed(key), **params})


def test_the_appview_finds_the_service_online_and_valid(world: World) -> None:
    view = world.net.appview_client().app.bsky.feed.get_feed_generator({"feed": world.feed("projet")})
    assert view.is_online and view.is_valid
    assert view.view.display_name == "numpolville · Projet" and view.view.did == \
        world.config.bluesky.feeds.service_did
    again = publish(world.client("bot"), world.net.did("bot"), world.config, world.store)
    assert [p.outcome for p in again] == ["unchanged"] * 5  # nothing rewritten


def test_get_feed_through_the_pds_gives_the_category_newest_first(world: World) -> None:
    res = get_feed(world, "dan", "projet")
    assert [f.post.uri for f in res.feed] == world.expected("projet") and len(res.feed) == 3
    assert world.net.did("dan") in world.resolved  # dan's PDS token reached the service and was checked
    assert [f.post.uri for f in get_feed(world, "alice", "contexte").feed] == world.expected("contexte")
    assert get_feed(world, "alice", "initiative").feed == []
    everything = [f.post.uri for f in get_feed(world, "carol", "all", limit=100).feed]
    assert everything == world.expected("projet", "contexte", "prospective")[:100]


def test_a_withdrawal_and_a_reclassification_show_on_the_next_call(world: World) -> None:
    withdrawn, moved, *kept = world.expected("projet")
    world.curator.handle(m.ModeratorWithdrawal("bluesky", withdrawn, "modo"))
    world.curator.handle(m.ModeratorDecision("bluesky", moved, "contexte", "modo"))
    assert [f.post.uri for f in get_feed(world, "dan", "projet").feed] == kept
    assert moved in [f.post.uri for f in get_feed(world, "dan", "contexte").feed]
    assert withdrawn not in [f.post.uri for f in get_feed(world, "dan", "all", limit=100).feed]


def test_120_posts_paged_by_50_come_back_each_exactly_once(world: World) -> None:
    pages, cursor = [], None
    while True:
        res = get_feed(world, "bob", "prospective", limit=50, **({"cursor": cursor} if cursor else {}))
        pages.append([f.post.uri for f in res.feed])
        cursor = res.cursor
        if not cursor:
            break
    assert [len(p) for p in pages] in ([50, 50, 20], [50, 50, 20, 0])
    assert [u for p in pages for u in p] == world.expected("prospective")


def test_bad_tokens_from_a_real_pds_are_refused(world: World) -> None:
    alice = world.client("alice")
    did = world.config.bluesky.feeds.service_did

    def token(**params: Any) -> str:
        return alice.com.atproto.server.get_service_auth({"aud": did, "lxm": GET_SKELETON, **params}).token

    def call(jwt: str) -> httpx.Response:
        return httpx.get(f"{world.url}/xrpc/{GET_SKELETON}", params={"feed": world.feed("projet")},
                         headers={"Authorization": f"Bearer {jwt}"}, timeout=10)

    good = token()
    assert call(good).status_code == 200
    head, body, _ = good.split(".")
    forged = f"{head}.{body}.{Key().token().split('.')[2]}"  # another key's signature
    # A few seconds ahead: the PDS refuses an `exp` already past when the request reaches it (a
    # loaded machine took over a second once); then waited out.
    expires = int(time.time()) + 3
    expiring = token(exp=expires)
    cases = [(token(aud="did:web:elsewhere.example"), "BadJwtAudience"),
             (token(lxm="app.bsky.feed.getTimeline"), "BadJwtLexiconMethod"),
             (forged, "BadJwtSignature")]
    time.sleep(max(0.0, expires + 1.05 - time.time()))
    cases.append((expiring, "JwtExpired"))
    for jwt, error in cases:
        r = call(jwt)
        assert (r.status_code, r.json()["error"]) == (401, error), r.text


def test_an_avatar_is_published_once(world: World, tmp_path: Path) -> None:
    from dataclasses import replace

    image = tmp_path / "avatar.png"
    image.write_bytes(png())
    c = world.config
    config = replace(c, bluesky=replace(c.bluesky, feeds=replace(c.bluesky.feeds, avatar=str(image))))
    bot = world.client("bot")
    assert [p.outcome for p in publish(bot, world.net.did("bot"), config, world.store)] == ["updated"] * 5
    assert [p.outcome for p in publish(bot, world.net.did("bot"), config, world.store)] == ["unchanged"] * 5
    av = world.net.appview_client()
    view = world.net.wait_until(lambda: _generator(av, world.feed("projet")).view.avatar, what="the avatar")
    assert view.startswith("http")


def test_cli_publish_is_idempotent_list_links_and_unpublish_removes(world: World, tmp_path: Path) -> None:
    net, c = world.net, world.config
    conf = tmp_path / "c.toml"
    conf.write_text(f'database = "{c.database}"\n[web]\npublic_url = "{world.url}"\n'
                    f'[bluesky]\nenabled = true\nservice = "{net.pds_url}"\nhandle = "{net.handle("bot")}"\n'
                    f'[bluesky.feeds]\nenabled = true\nplc_directory = "{net.plc_url}"\n')
    env = {"NUMPOLVILLE_BLUESKY_PASSWORD": net.accounts["bot"]["password"]}
    runner = CliRunner()
    first = runner.invoke(cli, ["feeds", "publish", "-c", str(conf)], env=env)  # the avatar goes
    assert first.exit_code == 0 and first.output.count("updated") == 5, first.output
    published = runner.invoke(cli, ["feeds", "publish", "-c", str(conf)], env=env)
    assert published.exit_code == 0, published.output
    assert published.output.count("unchanged") == 5
    listed = runner.invoke(cli, ["feeds", "list", "-c", str(conf)])
    assert f"https://bsky.app/profile/{net.did('bot')}/feed/projet" in listed.output
    assert world.feed("prospective") in listed.output
    removed = runner.invoke(cli, ["feeds", "unpublish", "-c", str(conf)], env=env)
    assert removed.exit_code == 0 and removed.output.count("removed") == 5, removed.output
    described = httpx.get(f"{world.url}/xrpc/app.bsky.feed.describeFeedGenerator", timeout=10).json()
    assert described["feeds"] == []
    r = httpx.get(f"{world.url}/xrpc/{GET_SKELETON}", params={"feed": world.feed("projet")}, timeout=10)
    assert r.json()["error"] == "UnknownFeed"
