"""The bot on every Mastodon-API server world (tests/mastodon_server/flavours.py): it hears every
post and answer whether a stream works, stays silent, is never fed or cannot be opened at all, and
it never posts twice, with or without the server's Idempotency-Key.

The Runtime runs in this process (as in test_mastodon_adapter) against the local server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot import model as m
from bot.mastodon import sources as feeds
from bot.store import Store
from tests.mastodon_server import MastodonServer
from tests.mastodon_server.flavours import FLAVOURS
from tests.test_mastodon_adapter import (  # noqa: F401 - `world` and its server are fixtures
    TAG,
    Bot,
    bot_id,
    flavoured_server,
    make_bot,
    populate_world,
    prompt_and_answer,
    reply_of,
    wait_for,
    world,
)


def gotosocial() -> MastodonServer:
    server = MastodonServer(heartbeat=0.5, rate_limit=100_000, flavour="gotosocial").start()
    populate_world(server)
    return server


def token(server: MastodonServer) -> str:
    return server.world.numpolville_token  # type: ignore[attr-defined]


def sources(bot: Bot) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in bot.store.health()["sources"]}


# ---- every world --------------------------------------------------------------------------------

def test_prompt_answer_boost_on_every_family(world: MastodonServer, tmp_path: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The happy path of #3 on each family, live: GoToSocial's hashtag stream is never fed, so
    there the post comes through the followed tag on the user stream. A stream that works is
    never counted as missing what the reconciliation poll also read."""
    monkeypatch.setattr(feeds, "RECONCILE_GRACE", 0.5)
    b = make_bot(world, tmp_path, token(world)).start()
    try:  # after the first read of the tag timeline: what it finds from now on, the stream owes
        wait_for(lambda: world.requests("GET", r"/timelines/tag/"), what="the first read done")
        started = time.monotonic()
        status, answer = prompt_and_answer(b, world, "alice", "2")
        took = time.monotonic() - started
        wait_for(lambda: b.item(status["id"])["category"] == "contexte", what="the classification")
        wait_for(lambda: (bot_id(world), status["id"]) in world.reblogs(), what="the boost")
        assert [p.in_reply_to_id for p in b.prompts()] == [status["id"]]  # one prompt, no other reply
        assert took < 3.0, f"prompt and answer took {took:.1f} s: not live"
        server = b.store.servers()[0]["info"]
        flavour = FLAVOURS[world.flavour.name]
        assert (server["software"], server["version"]) == (flavour.software, flavour.version)
        assert server["idempotency"] is flavour.idempotency and server["sse"] is flavour.sse
        assert server["follows_tag"] is True
        assert (bot_id(world), TAG) in world.world.followed_tags
        time.sleep(1.0)  # reconciliation polls (every 0.2 s) and their grace (0.5 s)
        tag = sources(b)["tag"]
        if world.flavour.name == "gotosocial":  # accepted, never fed: set aside
            assert tag["mode"] == "polling" and tag["missed"] >= 1, tag
        else:
            assert (tag["mode"], tag["missed"]) == ("streaming", 0), tag
    finally:
        b.stop()
    assert {s["state"] for s in b.store.health()["sources"]} == {"stopped"}


def test_posts_made_while_the_bot_was_down_are_each_handled_once(
        world: MastodonServer, tmp_path: Path) -> None:  # noqa: F811
    b = make_bot(world, tmp_path, token(world)).start()
    first = world.post("alice", f"Avant l'arrêt #{TAG}")
    wait_for(lambda: reply_of(b, first["id"]), what="the first prompt")
    b.stop()
    assert {s["state"] for s in b.store.health()["sources"]} == {"stopped"}
    offline = [world.post(who, f"Pendant l'arrêt {n} #{TAG}") for n, who in
               enumerate(["alice", "bob", "alice", "bob", "alice"])]
    b.start()
    try:
        for post in offline:
            wait_for(lambda p=post: reply_of(b, p["id"]), what="a prompt for each offline post")
        time.sleep(1.0)  # several reconciliation polls
        replies = [p.in_reply_to_id for p in b.prompts()]
        assert sorted(replies) == sorted([first["id"], *(p["id"] for p in offline)])
    finally:
        b.stop()


# ---- streams that do not carry everything ----------------------------------------------------------

def test_a_silent_hashtag_stream_loses_nothing(mastodon_server: MastodonServer, tmp_path: Path) -> None:
    """The hashtag stream opens and says nothing (GoToSocial's, or a broken proxy): 20 posts are
    all handled within 2 x poll_interval, and the stream is demoted with the reason."""
    server = mastodon_server
    populate_world(server)
    server.faults.silent_streams = {"hashtag"}
    interval = 2.0
    b = make_bot(server, tmp_path, token(server), poll_interval=interval, follow_tag=False).start()
    try:
        wait_for(lambda: server.requests("GET", r"/timelines/tag/"), what="the first read done")
        started = time.monotonic()
        posts = [server.post(("alice", "bob")[n % 2], f"Partage {n} https://example.org/{n} #{TAG}")
                 for n in range(20)]
        wait_for(lambda: all(reply_of(b, p["id"]) for p in posts), timeout=2 * interval,
                 what="a prompt for each of the 20 posts")
        print(f"\n20 posts on a silent stream, all prompted in {time.monotonic() - started:.2f} s")
        tag = wait_for(lambda: (s := sources(b)["tag"])["mode"] == "polling" and s, timeout=10,
                       what="the tag stream demoted")
        assert "the stream missed 20 entries the poll found" in tag["reason"], tag
        assert tag["missed"] == 20
        assert sources(b)["mentions"]["mode"] == "streaming"  # the user stream did its job
    finally:
        b.stop()


def test_a_stream_that_fails_the_tls_handshake_polls(mastodon_server: MastodonServer, tmp_path: Path) -> None:
    """The server announces wss:// where nothing speaks TLS (a proxy that does not pass the
    upgrade fails the same way): the bot polls from the start and says why."""
    server = mastodon_server
    populate_world(server)
    server.faults.streaming_wss = True
    b = make_bot(server, tmp_path, token(server)).start(streams=0)
    try:
        status, _ = prompt_and_answer(b, server, "alice", "1")
        wait_for(lambda: b.item(status["id"])["category"] == "projet", what="the classification")
        for name in ("tag", "mentions"):
            source = wait_for(lambda n=name: (s := sources(b)[n])["reason"] and s, what="a reason")
            assert source["mode"] == "polling" and "could not be opened (SSLError" in source["reason"]
    finally:
        b.stop()
    out = Store(tmp_path / "bot.db")
    assert all("SSL" in s["reason"] for s in out.health()["sources"])


# ---- GoToSocial ------------------------------------------------------------------------------------

def test_gotosocial_first_post_after_start_is_read_by_the_poll(tmp_path: Path) -> None:
    """The tag timeline is 404 until the tag is used, and nothing live carries the tag (no
    followed tag here): the very first post, made after the bot started, is still prompted."""
    server = gotosocial()
    try:
        b = make_bot(server, tmp_path, token(server), follow_tag=False).start()
        try:
            wait_for(lambda: server.requests("GET", r"/timelines/tag/", status=404), what="a 404 first")
            post = server.post("alice", f"Le tout premier #{TAG}")
            wait_for(lambda: reply_of(b, post["id"]), what="the prompt")
            assert len(post["id"]) == 26  # a ULID
            assert b.store.cursor("mastodon", "tag") == post["id"]
        finally:
            b.stop()
    finally:
        server.stop()


def test_gotosocial_retried_effects_post_nothing_twice(tmp_path: Path) -> None:
    """GoToSocial ignores Idempotency-Key: a prompt and a digest thread carried out again (as
    after a crash between the call and writing it down) find what the first attempt posted."""
    server = gotosocial()
    try:
        b = make_bot(server, tmp_path, token(server)).start()
        try:
            post = server.post("alice", f"Un partage #{TAG}")
            prompt = wait_for(lambda: reply_of(b, post["id"]), what="the prompt")
            adapter = b.runtime.adapters[0]  # type: ignore[union-attr]
            row = b.store._one("SELECT payload FROM intents WHERE kind = 'prompt'")
            action = m.from_dict(json.loads(row["payload"]))  # type: ignore[index]
            assert adapter.perform(action).split()[1] == prompt.id
            first = adapter.post_thread(["La veille, partie 1", "partie 2"], "2026-W48")
            assert adapter.post_thread(["La veille, partie 1", "partie 2"], "2026-W48") == first
            assert [p.in_reply_to_id for p in b.prompts()] == [post["id"], first[0]]
        finally:
            b.stop()
    finally:
        server.stop()


@pytest.mark.parametrize("policy,note", [("approval", "awaiting the author's approval"),
                                         ("nobody", "refused: the author's interaction policy")])
def test_gotosocial_boost_approval_is_recorded_not_retried(tmp_path: Path, policy: str, note: str) -> None:
    server = gotosocial()
    try:
        server.set_reblog_policy("alice", policy)
        b = make_bot(server, tmp_path, token(server)).start()
        try:
            status, _ = prompt_and_answer(b, server, "alice", "3")
            wait_for(lambda: (b.item(status["id"]) or {}).get("boost_note"), what="the boost's outcome")
            assert b.item(status["id"])["boost_note"].startswith(note)
            time.sleep(1.5)  # several timer and retry rounds
            assert len(server.requests("POST", rf"/statuses/{status['id']}/reblog$")) == 1
            health = b.store.health()
            counts = (health["boosts_awaiting_approval"], health["boosts_refused"])
            assert counts == ((1, 0) if policy == "approval" else (0, 1))
        finally:
            b.stop()
    finally:
        server.stop()


def test_a_gotosocial_discovery_server_says_it_needs_a_token(mastodon_server: MastodonServer, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """GoToSocial shows its tag timeline only to its users: the discovery feed says so and what to
    do, and the home server's feeds go on."""
    home = populate_world(mastodon_server)
    remote = gotosocial()
    try:
        b = make_bot(home, tmp_path, token(home), discovery_instances=[remote.base_url]).start()
        try:
            status, _ = prompt_and_answer(b, home, "alice", "4")
            wait_for(lambda: "shows its tag timeline only to its own users" in caplog.text,
                     what="the discovery feed's explanation")
            wait_for(lambda: b.item(status["id"])["category"] == "prospective", what="the home feeds")
            assert remote.requests("GET", r"/timelines/tag/", status=401)
        finally:
            b.stop()
    finally:
        remote.stop()
