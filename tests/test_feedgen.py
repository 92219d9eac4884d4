"""The feed service without the network: config, names, the store's pages and cursors, and the
HTTP routes served by uvicorn on 127.0.0.1 (httpx as the client), with service tokens signed by
keys made here (ES256K, as a PDS signs them: `bench.feeds.Key`) and resolved through an injected resolver."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from atproto_identity.exceptions import DidNotFoundError
from starlette.applications import Starlette

from bench.feeds import Key
from bot import model as m
from bot.config import Config, ConfigError, graphemes, parse
from bot.curator import Curator
from bot.feedgen.auth import KeyCache
from bot.feedgen.feeds import GET_SKELETON, feed_uri, feeds, fit_name
from bot.feedgen.routes import routes
from bot.feedgen.skeleton import decode_cursor, encode_cursor
from bot.store import Store

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
BOT = "did:plc:numpolbot"


# ---- helpers shared with the end-to-end tests ------------------------------------------------------

def feeds_config(db: Path, public_url: str, **feeds_section: Any) -> Config:
    return parse({"database": str(db), "web": {"public_url": public_url},
                  "bluesky": {"feeds": {"enabled": True, **feeds_section}}})


def bound_socket() -> socket.socket:
    """A listening-ready socket on 127.0.0.1 (its port is known before the app is built)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve(app: Starlette, sock: socket.socket) -> Iterator[None]:
    """Run `app` under uvicorn in a thread on `sock` until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def tagged_post(author: m.Author, rkey: str, category: str | None, at: datetime,
                visibility: m.Visibility = "public") -> m.Post:
    uri = f"at://{author.id}/app.bsky.feed.post/{rkey}"
    tags = {"numpolville", category} if category else {"numpolville"}
    return m.Post("bluesky", uri, f"{uri} cid", f"https://bsky.app/x/{rkey}", author, "lien #numpolville",
                  at, visibility, frozenset(tags))


class Resolver:
    """DID -> did:key, counting lookups (the network's resolver is exercised end to end)."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.calls: list[tuple[str, bool]] = []

    async def __call__(self, did: str, refresh: bool) -> str:
        self.calls.append((did, refresh))
        await asyncio.sleep(0.01)  # a PLC round trip, during which other requests arrive
        if did not in self.keys:
            raise DidNotFoundError(f"Unable to resolve DID {did}")  # as the SDK's resolver does
        return self.keys[did]


# ---- config and names ----------------------------------------------------------------------------

def test_service_did_defaults_to_the_sites_did_web(tmp_path: Path) -> None:
    c = feeds_config(tmp_path / "db", "http://localhost:8123")
    assert c.bluesky.feeds.service_did == "did:web:localhost%3A8123"
    assert feeds_config(tmp_path / "db", "https://veille.example.org/").bluesky.feeds.service_did == \
        "did:web:veille.example.org"
    plc = feeds_config(tmp_path / "db", "https://x.org", service_did="did:plc:abc")
    assert plc.bluesky.feeds.service_did == "did:plc:abc"
    assert parse({}).bluesky.feeds.enabled is False


def test_feed_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bluesky.feeds.names.projet"):
        feeds_config(tmp_path / "db", "https://x.org", names={"projet": "x" * 25})
    with pytest.raises(ConfigError, match="bluesky.feeds.names.autre"):
        feeds_config(tmp_path / "db", "https://x.org", names={"autre": "Autre"})
    with pytest.raises(ConfigError, match="bluesky.feeds.service_did"):
        parse({"bluesky": {"feeds": {"enabled": True}}})  # no public_url, no DID


def test_default_names_are_french_and_fit_bluesky(tmp_path: Path) -> None:
    fs = feeds(feeds_config(tmp_path / "db", "https://x.org"))
    assert [f.key for f in fs] == ["all", "projet", "contexte", "initiative", "prospective"]
    assert [f.name for f in fs] == ["numpolville · Tout", "numpolville · Projet", "numpolville · Contexte",
                                    "numpolville · Initiative", "numpolville·Prospective"]
    assert all(graphemes(f.name) <= 24 and 0 < graphemes(f.description) <= 300 for f in fs)
    assert "« Contexte »" in fs[2].description
    custom = feeds(feeds_config(tmp_path / "db", "https://x.org", names={"projet": "Projets 📌🏽"}))
    assert custom[1].name == "Projets 📌🏽"
    assert fit_name("a" * 30) == "a" * 23 + "…"
    assert graphemes("👩🏽‍💻é") == 2


# ---- the store's pages ---------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "db.sqlite")


def seed(store: Store, posts: list[m.Post]) -> Curator:
    cur = Curator(parse({}), store)
    for post in posts:
        cur.handle(m.PostSeen(post))
    return cur


def test_pages_newest_first_each_post_once_ties_broken_by_uri(store: Store) -> None:
    alice = m.Author("bluesky", "did:plc:alice", "alice.test")
    # 25 posts, five per second: ties on created_at are the hard case for a cursor
    posts = [tagged_post(alice, f"r{i:02d}", "projet", T0 + timedelta(seconds=i // 5)) for i in range(25)]
    seed(store, posts)
    expected = sorted(((p.created_at.isoformat(timespec="seconds"), p.uri) for p in posts), reverse=True)
    seen, before = [], None
    while page := store.feed_page("projet", before, 7):
        seen += page
        before = page[-1]
    assert seen == expected
    assert store.feed_page("contexte", None, 50) == []
    assert store.feed_page(None, None, 50) == expected


def test_pages_show_only_what_a_digest_may_show(store: Store) -> None:
    alice = m.Author("bluesky", "did:plc:alice", "alice.test")
    nobot = m.Author("bluesky", "did:plc:nobot", "nobot.test", bio="pas de robots #NoBot")
    quiet = m.Author("bluesky", "did:plc:quiet", "quiet.test", labels=("!no-unauthenticated",))
    masto = m.Author("mastodon", "1", "alice@home.test")
    shown = tagged_post(alice, "shown", "projet", T0)
    posts = [shown, tagged_post(alice, "withdrawn", "projet", T0),
             tagged_post(alice, "deleted", "projet", T0), tagged_post(alice, "unclassified", None, T0),
             tagged_post(quiet, "quiet", "projet", T0),
             tagged_post(alice, "private", "projet", T0, "private"),
             tagged_post(nobot, "nobot", "projet", T0)]
    cur = seed(store, posts)
    cur.handle(m.PostSeen(m.Post("mastodon", "https://home.test/1", "1", "u", masto, "x", T0,
                                 tags=frozenset({"numpolville", "projet"}))))
    cur.handle(m.ModeratorWithdrawal("bluesky", posts[1].uri, "modo"))
    cur.handle(m.PostDeleted("bluesky", posts[2].uri))
    assert [u for _, u in store.feed_page(None, None, 50)] == [shown.uri]
    # a reclassification moves the post at once; an opt-out hides the author's posts
    cur.handle(m.ModeratorDecision("bluesky", shown.uri, "contexte", "modo"))
    assert store.feed_page("projet", None, 50) == [] and len(store.feed_page("contexte", None, 50)) == 1
    store.apply(m.PostSeen(shown), [m.OptOut("bluesky", alice.id, alice.handle)])
    assert store.feed_page(None, None, 50) == []


def test_cursor_is_opaque_and_checked() -> None:
    c = encode_cursor("2026-11-23T09:00:00+00:00", "at://did:plc:a/app.bsky.feed.post/x")
    assert "at://" not in c and decode_cursor(c) == ("2026-11-23T09:00:00+00:00",
                                                     "at://did:plc:a/app.bsky.feed.post/x")


# ---- the HTTP routes -----------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The feed routes under uvicorn, 12 classified posts, the feeds published as if by `publish`."""
    sock = bound_socket()
    url = f"http://localhost:{sock.getsockname()[1]}"
    config = feeds_config(tmp_path / "db.sqlite", url)
    store = Store(config.database)
    alice = m.Author("bluesky", "did:plc:alice", "alice.test")
    posts = [tagged_post(alice, f"r{i:02d}", ("projet", "contexte")[i % 2], T0 + timedelta(minutes=i))
             for i in range(12)]
    seed(store, posts)
    for f in feeds(config):
        store.feed_generator_published(f.key, feed_uri(BOT, f.key), "cid")
    resolver = Resolver()
    keys = KeyCache(resolver, min_refresh=0)
    with serve(Starlette(routes=routes(config, store, keys=keys)), sock), \
            httpx.Client(base_url=url, timeout=10) as http:
        yield {"http": http, "config": config, "store": store, "posts": posts, "resolver": resolver,
               "keys": keys, "did": config.bluesky.feeds.service_did}


def get_skeleton(http: httpx.Client, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.get("/xrpc/app.bsky.feed.getFeedSkeleton", params=params, headers=headers)


def test_did_document_and_description(site: dict[str, Any]) -> None:
    http, did = site["http"], site["did"]
    doc = http.get("/.well-known/did.json").json()
    assert doc["id"] == did and doc["service"] == [
        {"id": "#bsky_fg", "type": "BskyFeedGenerator", "serviceEndpoint": str(http.base_url).rstrip("/")}]
    described = http.get("/xrpc/app.bsky.feed.describeFeedGenerator").json()
    assert described["did"] == did
    published = sorted(feed_uri(BOT, f.key) for f in feeds(site["config"]))
    assert [f["uri"] for f in described["feeds"]] == published


def test_skeleton_without_token_pages_and_errors(site: dict[str, Any]) -> None:
    http, posts = site["http"], site["posts"]
    projet = [p.uri for p in reversed(posts) if p.has_tag("projet")]
    first = get_skeleton(http, feed=feed_uri(BOT, "projet"), limit=4).json()
    assert [i["post"] for i in first["feed"]] == projet[:4]
    rest = get_skeleton(http, feed=feed_uri(BOT, "projet"), cursor=first["cursor"]).json()
    assert [i["post"] for i in rest["feed"]] == projet[4:] and "cursor" not in rest
    everything = get_skeleton(http, feed=feed_uri(BOT, "all")).json()["feed"]
    assert [i["post"] for i in everything] == [p.uri for p in reversed(posts)]
    for params, error in [({"feed": feed_uri(BOT, "autre")}, "UnknownFeed"),
                          ({"feed": feed_uri("did:plc:other", "projet")}, "UnknownFeed"),
                          ({}, "InvalidRequest"),
                          ({"feed": feed_uri(BOT, "all"), "limit": 0}, "InvalidRequest"),
                          ({"feed": feed_uri(BOT, "all"), "limit": 101}, "InvalidRequest"),
                          ({"feed": feed_uri(BOT, "all"), "limit": "ten"}, "InvalidRequest"),
                          ({"feed": feed_uri(BOT, "all"), "cursor": "%%not-base64"}, "InvalidRequest"),
                          ({"feed": feed_uri(BOT, "all"), "cursor": encode_cursor("yesterday", "x")},
                           "InvalidRequest")]:
        r = get_skeleton(http, **params)
        assert (r.status_code, r.json()["error"]) == (400, error), params
        assert r.json()["message"]
    assert len(get_skeleton(http, feed=feed_uri(BOT, "all"), limit=100).json()["feed"]) == 12


def test_tokens_checked(site: dict[str, Any]) -> None:
    http, did, resolver = site["http"], site["did"], site["resolver"]
    key, other = Key(), Key()
    resolver.keys["did:plc:viewer"] = key.did_key
    exp = int(time.time()) + 60
    good = dict(iss="did:plc:viewer", aud=did, exp=exp, lxm=GET_SKELETON)
    feed = feed_uri(BOT, "all")
    assert get_skeleton(http, key.token(**good), feed=feed).status_code == 200
    no_lxm = {k: v for k, v in good.items() if k != "lxm"}
    assert get_skeleton(http, key.token(**no_lxm), feed=feed).status_code == 200
    for token, error in [(key.token(**good | {"aud": "did:web:elsewhere.example"}), "BadJwtAudience"),
                         (key.token(**good | {"exp": int(time.time()) - 5}), "JwtExpired"),
                         (key.token(**good | {"lxm": "app.bsky.feed.getTimeline"}), "BadJwtLexiconMethod"),
                         (other.token(**good), "BadJwtSignature"),
                         (key.token(**no_lxm | {"exp": None}), "BadJwt"),
                         (key.token(**good | {"iss": "did:plc:unknown"}), "BadJwtIssuer"),
                         ("not.a.jwt", "BadJwt")]:
        r = get_skeleton(http, token, feed=feed)
        assert (r.status_code, r.json()["error"]) == (401, error), (error, r.text)
    r = http.get("/xrpc/app.bsky.feed.getFeedSkeleton", params={"feed": feed},
                 headers={"Authorization": "Basic x"})
    assert r.status_code == 401


def test_key_cache_refreshes_once_when_a_signature_fails() -> None:
    old, new = Key(), Key()
    resolver = Resolver()
    resolver.keys["did:plc:v"] = old.did_key
    now = [0.0]
    keys = KeyCache(resolver, ttl=3600, min_refresh=30, clock=lambda: now[0])

    async def scenario() -> None:
        from bot.feedgen.auth import ServiceAuth

        auth = ServiceAuth("did:web:x", keys)
        token = lambda k: "Bearer " + k.token(iss="did:plc:v", aud="did:web:x", exp=int(time.time()) + 60)
        assert await auth.verify(token(old)) == "did:plc:v"
        assert await auth.verify(token(old)) == "did:plc:v"
        assert resolver.calls == [("did:plc:v", False)]  # cached
        resolver.keys["did:plc:v"] = new.did_key  # the account rotated its key
        now[0] = 31
        assert await auth.verify(token(new)) == "did:plc:v"  # one refresh after the failure
        assert resolver.calls[1:] == [("did:plc:v", True)]
        with pytest.raises(Exception, match="signature"):
            await auth.verify(token(old))  # no refresh within min_refresh: no PLC hammering
        assert len(resolver.calls) == 2

    asyncio.run(scenario())


def test_feed_routes_are_off_unless_enabled(tmp_path: Path) -> None:
    assert routes(parse({"web": {"public_url": "https://x.org"}}), Store(tmp_path / "db")) == []


def test_doctor_checks_the_service_as_the_appview_calls_it(site: dict[str, Any], tmp_path: Path) -> None:
    from dataclasses import replace

    from bot import doctor

    config = site["config"]
    check = doctor.bluesky_feeds(config)
    assert check.status == "pass" and "5 feed(s)" in check.detail, check
    elsewhere = replace(config, bluesky=replace(config.bluesky, feeds=replace(
        config.bluesky.feeds, service_did="did:web:localhost%3A1")))
    assert doctor.bluesky_feeds(elsewhere).status == "fail"
    for key in list(site["store"].feed_generators()):
        site["store"].feed_generator_removed(key)
    assert doctor.bluesky_feeds(config).status == "warn"


def test_an_opt_out_written_by_another_process_shows_on_the_next_page(store: Store) -> None:
    """The excluded authors are cached between pages; a write through another connection (the bot
    beside the site) must still show at once."""
    alice = m.Author("bluesky", "did:plc:alice", "alice.test")
    seed(store, [tagged_post(alice, "a", "projet", T0)])
    assert len(store.feed_page(None, None, 50)) == 1
    other = Store(store.path)
    other.apply(m.PostSeen(tagged_post(alice, "a", "projet", T0)), [m.OptOut("bluesky", alice.id, "alice")])
    assert store.feed_page(None, None, 50) == []


def test_signatures_low_s_only_and_p256_keys_too() -> None:
    from bot.feedgen.auth import verified

    for key in (Key(), Key(p256=True)):
        good = key.sign(b"a.b")
        assert verified(key.did_key, b"a.b", good)
        assert not verified(key.did_key, b"a.b", key.sign(b"a.b", high_s=True))  # malleable twin
        assert not verified(key.did_key, b"a.c", good)
        assert not verified(key.did_key, b"a.b", good[:63])
        assert not verified(Key(p256=key.alg == "ES256").did_key, b"a.b", good)
    assert not verified("did:key:zNotAKey", b"a.b", bytes(64))


def test_a_kept_page_is_dropped_by_a_write_from_another_process(site: dict[str, Any]) -> None:
    http, posts = site["http"], site["posts"]
    feed = feed_uri(BOT, "all")
    assert get_skeleton(http, feed=feed).json() == get_skeleton(http, feed=feed).json()  # kept
    other = Store(site["config"].database)  # the bot, beside the site
    Curator(site["config"], other).handle(m.ModeratorWithdrawal("bluesky", posts[-1].uri, "modo"))
    assert [i["post"] for i in get_skeleton(http, feed=feed).json()["feed"]] == \
        [p.uri for p in reversed(posts[:-1])]
    Curator(site["config"], site["store"]).handle(m.ModeratorWithdrawal("bluesky", posts[-2].uri, "modo"))
    assert len(get_skeleton(http, feed=feed).json()["feed"]) == 10  # and one through the site's own store


def test_feeds_commands_say_what_is_missing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    conf = tmp_path / "c.toml"
    conf.write_text(f'database = "{tmp_path / "db.sqlite"}"\n[web]\npublic_url = "https://veille.example.org"\n')
    runner = CliRunner()
    off = runner.invoke(app, ["feeds", "publish", "-c", str(conf)])
    assert off.exit_code == 2 and "bluesky.feeds.enabled" in off.output
    conf.write_text(conf.read_text() + "[bluesky.feeds]\nenabled = true\n")
    nobody = runner.invoke(app, ["feeds", "publish", "-c", str(conf)])
    assert nobody.exit_code == 2 and "bluesky.handle" in nobody.output
    listed = runner.invoke(app, ["feeds", "list", "-c", str(conf)])
    assert listed.exit_code == 0 and "numpolville·Prospective" in listed.output
    assert "not published" in listed.output and "feeds publish" in listed.output
    checked = runner.invoke(app, ["config", "check", "-c", str(conf)])
    assert "did:web:veille.example.org" in checked.output


def test_a_moderators_withdrawal_unboosts_and_is_final(store: Store) -> None:
    alice = m.Author("bluesky", "did:plc:alice", "alice.test")
    post = tagged_post(alice, "boosted", "projet", T0)
    cur = Curator(parse({}), store)
    [boost] = cur.handle(m.PostSeen(post))
    store.intent_done(boost, "at://did:plc:numpolbot/app.bsky.feed.repost/x")
    [unboost] = cur.handle(m.ModeratorWithdrawal("bluesky", post.uri, "modo"))
    assert isinstance(unboost.action, m.Unboost) and store.item("bluesky", post.uri).state == "withdrawn"
    assert cur.handle(m.ModeratorWithdrawal("bluesky", post.uri, "modo")) == []  # already withdrawn
    assert store.feed_page(None, None, 50) == []


def test_tokens_arriving_together_from_a_new_issuer_resolve_its_key_once() -> None:
    from bot.feedgen.auth import ServiceAuth

    key, resolver = Key(), Resolver()
    resolver.keys["did:plc:new"] = key.did_key
    auth = ServiceAuth("did:web:x", KeyCache(resolver))
    header = "Bearer " + key.token(iss="did:plc:new", aud="did:web:x", exp=int(time.time()) + 60)

    async def together() -> list[str | None]:
        return await asyncio.gather(*(auth.verify(header) for _ in range(20)))

    assert asyncio.run(together()) == ["did:plc:new"] * 20
    assert resolver.calls == [("did:plc:new", False)]
