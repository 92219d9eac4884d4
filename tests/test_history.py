"""`numpolville import`: the rules for imported posts (pure), then the real command on the local
servers, killed with SIGKILL halfway and run again: each post recorded once, none prompted, none
boosted, and the second run fetches only what the first had not."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from atproto import models

from bot import model as m
from bot.config import parse
from bot.history import bluesky_windows
from bot.rules import decide
from tests.bsky_network import BlueskyNetwork
from tests.mastodon_server import MastodonServer
from tests.mastodon_server.pytest_plugin import federated_servers, mastodon_server  # noqa: F401
from tests.test_faults_support import PASSWORD_ENV, ROOT, TOKEN_ENV, populate, query, wait_for, write_config
from tests.test_rules import ALICE, BOT, post

TAG = "numpolville"
POSTS = 300  # per network, over 10 weeks (the size)


def imported(p: m.Post, policy: dict[str, Any] | None = None, **ctx: Any) -> list[m.Action]:
    config = parse({"policy": policy or {}})
    return decide(m.PostImported(p), m.Context(bot_ids=frozenset({BOT.id}), **ctx), config)


def kinds(actions: list[m.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_an_imported_post_is_recorded_never_prompted_nor_boosted_by_default() -> None:
    actions = imported(post())
    assert kinds(actions) == ["Record"] and actions[0].state == "seen"  # type: ignore[union-attr]
    assert "import_prompt = false" in actions[0].reason  # type: ignore[union-attr]
    classified = imported(post(text="Un lien #numpolville #contexte"))
    assert kinds(classified) == ["Record"]
    assert (classified[0].state, classified[0].category) == ("classified", "contexte")  # type: ignore[union-attr]


def test_the_policy_keys_allow_prompts_and_boosts() -> None:
    assert kinds(imported(post(), {"import_prompt": True})) == ["Record", "Prompt"]
    assert kinds(imported(post(text="x #numpolville #projet"), {"import_boost": True})) == [
        "Record", "Boost"]
    # the live limits still apply to imported prompts
    assert kinds(imported(post(), {"import_prompt": True, "prompt": "never"})) == ["Record"]


def test_consent_and_replies_apply_as_live() -> None:
    nobot = replace(ALICE, bio="pas de robots #nobot")
    assert kinds(imported(post(nobot))) == ["Ignore"]
    opted = imported(post(), {"import_prompt": True}, author=m.AuthorState(opted_out=True))
    assert kinds(opted) == ["Record"] and "opted out" in opted[0].reason  # type: ignore[union-attr]
    erased = m.AuthorState(erased_at=post().created_at + timedelta(days=1))
    assert kinds(imported(post(), author=erased)) == ["Unseen"], "an erased person is not re-imported"
    comment = post(reply_to_author="someone-else")
    assert imported(comment)[0].state == "skipped"  # type: ignore[union-attr]
    assert kinds(imported(comment, {"replies": "ignore"})) == ["Ignore"]


def test_already_recorded_untagged_and_own_posts_are_ignored() -> None:
    it = m.Item("mastodon", "u1", "u1-ref", ALICE.id, ALICE.handle, "classified")
    assert kinds(imported(post(), item=it)) == ["Ignore"]
    assert kinds(imported(post(text="sans tag"))) == ["Ignore"]
    assert kinds(imported(post(BOT))) == ["Ignore"]


def test_bluesky_windows_cover_the_range_newest_first() -> None:
    since = datetime(2026, 9, 1, tzinfo=timezone.utc)
    until = since + timedelta(days=70, hours=5)
    windows = list(bluesky_windows(since, until))
    assert windows[0][1] == until and windows[-1][0] == since and len(windows) == 11
    assert all(a[0] == b[1] for a, b in itertools.pairwise(windows))


# ---- the real command ------------------------------------------------------------------------------

def run_import(config: Path, since: datetime, until: datetime, env: dict[str, str],
               network: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "import", "--since", since.isoformat(), "--until",
         until.isoformat(), "--network", network, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=config.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env})


def kill_halfway_then_finish(config: Path, db: Path, since: datetime, until: datetime,
                             env: dict[str, str], network: str, total: int) -> tuple[str, float]:
    """Run the import, SIGKILL it once some but not all posts are in, run it again to the end.
    Returns the second run's output and the two runs' time."""
    started = time.monotonic()
    first = run_import(config, since, until, env, network)
    wait_for(lambda: items(db) >= total // 2 or first.poll() is not None, timeout=60,
             what="half the posts imported", interval=0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    halfway = items(db)
    assert 0 < halfway < total, f"killed at {halfway} of {total}: the test needs the middle"
    second = run_import(config, since, until, env, network)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    print(f"\n{network}: killed at {halfway}/{total} items; second run: {out.strip()[-600:]}")
    return out, time.monotonic() - started


def items(db: Path) -> int:
    return query(db, "SELECT count(*) FROM items")[0][0] if db.exists() else 0


def test_mastodon_import_home_and_discovery_resumed_after_kill(
        federated_servers: tuple[MastodonServer, MastodonServer], tmp_path: Path) -> None:  # noqa: F811
    home, piaille = federated_servers
    token = populate(home, ["alice", "bob"])
    piaille.create_account("zoe")
    now = datetime.now(timezone.utc)
    since, until = now - timedelta(weeks=10), now - timedelta(hours=1)
    made = []
    for i in range(POSTS):  # oldest first: a timeline's ids follow creation
        created = since + timedelta(minutes=1) + (until - since) * i / POSTS
        server, who = (piaille, "zoe") if i % 3 == 2 else (home, ("alice", "bob")[i % 2])
        category = " #projet" if i % 10 == 0 else ""
        made.append(server.post(who, f"Partage {i} https://example.org/{i} #{TAG}{category}",
                                created_at=created)["uri"])
    home.post("alice", f"Trop ancien #{TAG}", created_at=since - timedelta(days=1))
    home.post("alice", f"Trop récent #{TAG}")
    home.delay(r"/api/v1/timelines/tag/", 0.3)  # room to kill the first run between two pages
    config = write_config(tmp_path, home, extra=f'discovery_instances = ["{piaille.base_url}"]')
    db = tmp_path / "bot.db"
    out, took = kill_halfway_then_finish(config, db, since, until, {TOKEN_ENV: token}, "mastodon", POSTS)

    uris = [u for (u,) in query(db, "SELECT uri FROM items ORDER BY created_at")]
    assert sorted(uris) == sorted(made), "each post in range once, nothing else"
    assert query(db, "SELECT count(*) FROM items WHERE state = 'classified' AND category = 'projet'"
                 )[0][0] == POSTS // 10
    assert query(db, "SELECT count(*) FROM intents")[0][0] == 0, "nothing to prompt nor boost"
    bot_id = home.account("numpolvillebot").id
    assert home.reblogs() == [] and not [s for s in home.statuses("numpolvillebot")]
    tag_pages = [r for s in (home, piaille) for r in s.requests("GET", r"/api/v1/timelines/tag/")]
    pages = {name: len(s.requests("GET", r"/api/v1/timelines/tag/")) for name, s in
             (("home", home), ("piaille", piaille))}
    resolves = len(home.requests("GET", r"/api/v2/search"))
    # 6 pages at home (200 posts in range and 2 out, 40 a page), 3 on piaille, each followed by
    # the empty page its last Link header points to; at most the page being recorded when the
    # first run was killed is fetched again
    assert pages["home"] + pages["piaille"] <= 7 + 4 + 1, pages
    assert all("limit=40" in r["query"] for r in tag_pages), "the Link header's page, same filters"
    assert sum("max_id=" in r["query"] for r in tag_pages) >= 7 + 4 - 2, "paged by the Link header"
    assert "mastodon: 2/2 sources" in out and "new items" in out
    assert resolves <= POSTS // 3 + 2, "a foreign post is resolved once (again only if killed meanwhile)"
    print(f"mastodon import: {POSTS} posts in {took:.1f} s ({POSTS / took:.0f} posts/s, with 0.3 s "
          f"of delay per tag page); home budget: {len(home.requests())} requests "
          f"({pages['home']} tag pages, {resolves} resolves); piaille: {len(piaille.requests())} "
          f"requests ({pages['piaille']} tag pages); bot {bot_id}")


def seed_bluesky(net: BlueskyNetwork, since: datetime, until: datetime, count: int) -> list[str]:
    """`count` tagged posts spread over [since, until), one in ten classified (#projet), by alice,
    bob and carol in one commit each (applyWrites takes 200); their uris once the AppView has them."""
    made: list[str] = []
    writes: dict[str, list[Any]] = {name: [] for name in ("alice", "bob", "carol")}
    for i in range(count):  # createdAt in the past: the AppView sorts and dates by what it says
        category = " #projet" if i % 10 == 0 else ""
        created = since + timedelta(minutes=1) + (until - since) * i / count
        writes[("alice", "bob", "carol")[i % 3]].append(models.ComAtprotoRepoApplyWrites.Create(
            collection="app.bsky.feed.post", value=models.AppBskyFeedPost.Record(
                text=f"Partage {i} {time.time_ns()} https://example.org/b{i} #{TAG}{category}",
                created_at=created.strftime("%Y-%m-%dT%H:%M:%S.000Z"))))
    for name, creates in writes.items():
        if creates:
            results = net.client(name).com.atproto.repo.apply_writes(
                {"repo": net.did(name), "writes": creates}).results
            made += [r.uri for r in results]
            net.wait_visible(made[-1])
    return made


def bluesky_config(net: BlueskyNetwork, tmp_path: Path) -> tuple[Path, Path]:
    """The bot's configuration (Bluesky only) and database paths; the password goes in the
    environment (`PASSWORD_ENV`)."""
    config, db = tmp_path / "numpolville.toml", tmp_path / "bot.db"
    config.write_text(f"""
hashtag = "{TAG}"
database = "{db}"
[bluesky]
enabled = true
service = "{net.pds_url}"
handle = "{net.accounts["bot"]["handle"]}"
""", encoding="utf-8")
    return config, db


def test_bluesky_import_in_windows_resumed_after_kill(bsky_network: BlueskyNetwork,
                                                      tmp_path: Path) -> None:
    if not bsky_network.has_appview:
        pytest.skip("searchPosts needs the AppView (PostgreSQL)")
    net = bsky_network
    now = datetime.now(timezone.utc)
    since, until = now - timedelta(weeks=10), now - timedelta(days=1)  # other tests post now
    made = seed_bluesky(net, since, until, POSTS)
    config, db = bluesky_config(net, tmp_path)
    acc = net.accounts["bot"]
    out, took = kill_halfway_then_finish(config, db, since, until,
                                         {PASSWORD_ENV: acc["password"]}, "bluesky", POSTS)
    uris = [u for (u,) in query(db, "SELECT uri FROM items")]
    assert sorted(uris) == sorted(made), "each post in range once, nothing else"
    assert query(db, "SELECT count(*) FROM items WHERE state = 'classified'")[0][0] == POSTS // 10
    assert query(db, "SELECT count(*) FROM intents")[0][0] == 0, "nothing to prompt nor boost"
    assert "bluesky: 10/10 sources" in out  # 69 days in 7-day windows
    searches = sum(int(line.split(": ")[1].split()[0]) for line in out.splitlines()
                   if line.startswith("bluesky search "))
    print(f"bluesky import: {POSTS} posts in {took:.1f} s ({POSTS / took:.0f} posts/s); second run: "
          f"{searches} searchPosts requests (the reference AppView ignores since/until: each "
          f"window pages down from the newest post)")


class RateLimitingProxy:
    """An HTTP proxy on 127.0.0.1 in front of the PDS (which hands app.bsky.* on to the AppView)
    that answers 429, with the ratelimit-* headers Bluesky's services send, to the first
    `refuse` searchPosts calls: the reference network cannot be told to rate-limit."""

    def __init__(self, upstream: str, refuse: int, reset_in: float) -> None:
        self.upstream, self.refuse, self.reset_in = upstream.rstrip("/"), refuse, reset_in
        self.refused: list[float] = []  # when each 429 was sent
        self.searches: list[float] = []  # when each searchPosts call came
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.forward()

            def do_POST(self) -> None:
                self.forward()

            def forward(self) -> None:
                if "/xrpc/app.bsky.feed.searchPosts" in self.path:
                    proxy.searches.append(time.time())
                    if len(proxy.refused) < proxy.refuse:
                        proxy.refused.append(time.time())
                        return self.answer(429, {
                            "ratelimit-limit": "3000", "ratelimit-remaining": "0",
                            "ratelimit-policy": "3000;w=300",
                            "ratelimit-reset": str(int(time.time() + proxy.reset_in))},
                            b'{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}')
                length = int(self.headers.get("Content-Length") or 0)
                kept = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                got = requests.request(self.command, proxy.upstream + self.path, headers=kept,
                                       data=self.rfile.read(length) if length else None, timeout=30)
                self.answer(got.status_code, {"content-type": got.headers.get("content-type", "")},
                            got.content)

            def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in {**headers, "content-length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="429-proxy").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bluesky_import_waits_out_a_429(bsky_network: BlueskyNetwork, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """searchPosts answered 429 twice: the import waits until `ratelimit-reset`, asks again, and
    records every post once. In-process: the logged-in client is pointed at the proxy (the SDK
    would otherwise talk to the PDS its DID document names)."""
    if not bsky_network.has_appview:
        pytest.skip("searchPosts needs the AppView (PostgreSQL)")
    from bot.config import load
    from bot.curator import Curator
    from bot.history import bluesky_sources
    from bot.history import run_import as import_sources
    from bot.runtime import build_adapters
    from bot.store import Store

    net = bsky_network
    now = datetime.now(timezone.utc)  # weeks before the other import test's range
    since, until = now - timedelta(weeks=20), now - timedelta(weeks=19)
    made = seed_bluesky(net, since, until, 12)
    monkeypatch.setenv(PASSWORD_ENV, net.accounts["bot"]["password"])
    config = load(bluesky_config(net, tmp_path)[0])
    store = Store(config.database)
    proxy = RateLimitingProxy(net.pds_url, refuse=2, reset_in=1.0)
    try:
        (adapter,) = build_adapters(config, store)
        curator = Curator(config, store)
        curator.bot_ids |= adapter.connect()
        adapter.client.update_base_url(proxy.url)  # type: ignore[attr-defined]
        started = time.monotonic()
        tallies = import_sources(bluesky_sources(adapter, since, until), curator, store, since, until)
        took = time.monotonic() - started
    finally:
        proxy.close()
    assert sorted(i["uri"] for i in store.items()) == sorted(made), "each post once, nothing else"
    assert store.pending_intents("bluesky") == []
    assert len(proxy.refused) == 2 and len(proxy.searches) == sum(t.requests for t in tallies)
    waits = [b - a for a, b in itertools.pairwise(proxy.searches[:3])]
    assert all(w >= 0.9 for w in waits), f"asked again before the reset: {waits}"
    print(f"\nbluesky import under 429: {len(proxy.searches)} searchPosts calls, 2 answered 429 "
          f"and waited out, {took:.1f} s")
    store.close()


def test_mastodon_import_waits_out_the_rate_limit(mastodon_server: MastodonServer,  # noqa: F811
                                                  tmp_path: Path) -> None:
    """In-process (the command's own function), under a window of 4 requests per second: the
    connection's calls (credentials, server probe, tag follow, bot flag) and the pages."""
    from bot.config import load
    from bot.history import import_history
    from bot.store import Store

    token = populate(mastodon_server, ["alice"])
    since = datetime.now(timezone.utc) - timedelta(days=30)
    for i in range(90):
        mastodon_server.post("alice", f"Partage {i} #{TAG}", created_at=since + timedelta(hours=i + 1))
    mastodon_server.set_rate_limit(4, period=1.0)
    config = load(write_config(tmp_path, mastodon_server))
    config = replace(config, mastodon=replace(config.mastodon, access_token=token))
    store = Store(config.database)
    before, started = len(mastodon_server.requests(path_regex=r"^/api/")), time.monotonic()
    tallies = import_history(config, store, since, None, ("mastodon",))
    took, made = time.monotonic() - started, len(mastodon_server.requests(path_regex=r"^/api/")) - before
    assert [(t.requests, t.posts, t.recorded) for t in tallies] == [(4, 90, 90)]  # 40, 40, 10, []
    # more calls than two windows allow: the client waited for the windows (X-RateLimit headers,
    # and after a 429 its Retry-After) and lost nothing
    assert made > 8 and took >= 1.0, (made, took)  # at least 3 windows: 2 turns, 1 s apart
    mastodon_server.post("alice", f"Après la première importation #{TAG}")
    again = import_history(config, store, since, None, ("mastodon",))
    assert [(t.requests, t.posts) for t in again] == [(0, 0)], "a second run resumes the same range"
    print(f"\nunder 4 requests/s: {made} requests, {len(mastodon_server.requests(status=429))} "
          f"answered 429 and retried, {took:.1f} s")
    assert store.stats() == [{"network": "mastodon", "category": "", "state": "seen", "items": 90,
                              "boosted": 0}]


def test_mastodon_import_without_link_headers(mastodon_server: MastodonServer,  # noqa: F811
                                              tmp_path: Path) -> None:
    """The Link header's next page, or, from a server that sends none, the last entry's id while
    pages are full: the same 85 posts either way (in-process, as above)."""
    from bot.config import load
    from bot.history import import_history
    from bot.store import Store

    token = populate(mastodon_server, ["alice"])
    since = datetime.now(timezone.utc) - timedelta(days=30)
    for i in range(85):
        mastodon_server.post("alice", f"Partage {i} #{TAG}", created_at=since + timedelta(hours=i + 1))
    config = load(write_config(tmp_path, mastodon_server))
    config = replace(config, mastodon=replace(config.mastodon, access_token=token))
    store = Store(config.database)
    linked = import_history(config, store, since, None, ("mastodon",))
    assert [(t.requests, t.posts, t.recorded) for t in linked] == [(4, 85, 85)], "40, 40, 5, then []"
    mastodon_server.faults.link_headers = False
    unlinked = import_history(config, store, since - timedelta(days=1), None, ("mastodon",))
    assert [(t.requests, t.posts, t.recorded) for t in unlinked] == [(3, 85, 0)], "a short page ends"
    pages = mastodon_server.requests("GET", r"/api/v1/timelines/tag/")
    assert [("max_id=" in r["query"], "limit=40" in r["query"]) for r in pages] == [
        (False, True), (True, True), (True, True), (True, True),
        (False, True), (True, True), (True, True)]


def test_import_usage_errors(tmp_path: Path) -> None:
    config = tmp_path / "numpolville.toml"
    config.write_text(f'hashtag = "{TAG}"\ndatabase = "{tmp_path / "bot.db"}"\n', encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "import", *args, "--config", str(config)],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})

    nothing = run("--since", "2026-09-01")
    assert nothing.returncode == 2 and "no enabled network to import from" in nothing.stderr
    backwards = run("--since", "2026-09-01", "--until", "2026-08-01")
    assert backwards.returncode == 2 and "--since must come before --until" in backwards.stderr
    assert run("--since", "hier").returncode == 2
    assert run("--since", "2026-09-01", "--network", "fediverse").returncode == 2
