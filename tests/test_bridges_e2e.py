"""Bridged pairs end to end (#15): one bot on both networks, the project's Mastodon-API server and
the reference Bluesky network, with Bridgy Fed's copies written as Bridgy Fed writes them (a
Bluesky record carrying `bridgyOriginalUrl`; a Mastodon status by `handle@bsky.brid.gy` whose id is
`https://bsky.brid.gy/convert/ap/<at:// URI>`). Each pair is one item, asked once, answered on
either side, boosted on both, listed once.

The orders: the original first (its copy joins it); the copy first and its original within the
wait (the original is asked, the copy's held prompt is dropped); the copy first and no original in
time (the copy is asked, its original joins it late, the answer comes on the copy's side)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.bluesky.records import now_iso, record_key
from bot.bridges import CONVERT_PREFIX
from bot.config import parse
from bot.runtime import Runtime, build_adapters
from bot.store import Store
from tests.bsky_network import BlueskyNetwork
from tests.mastodon_server import MastodonServer
from tests.test_bluesky_e2e import answer as bsky_answer
from tests.test_bluesky_e2e import row, wait
from tests.test_faults_support import BOT, TAG, populate

WAIT = 4.0  # [policy] bridged_wait_seconds: long enough for the firehose, short for a test


def bsky_post(client: Any, text: str, rkey: str | None = None, **extra: Any) -> str:
    """A tagged post written as a raw record (Bridgy Fed's extra fields kept); its at:// URI."""
    body = f"{text} #{TAG}"
    start = len(f"{text} ".encode())
    record = {"$type": "app.bsky.feed.post", "text": body, "createdAt": now_iso(), "langs": ["fr"],
              "facets": [{"index": {"byteStart": start, "byteEnd": len(body.encode())},
                          "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": TAG}]}],
              **extra}
    data = {"repo": client.me.did, "collection": "app.bsky.feed.post", "record": record}
    return str(client.com.atproto.repo.create_record({**data, **({"rkey": rkey} if rkey else {})}).uri)


class Pair:
    """The bot on both networks (in process) and what each network shows of it."""

    def __init__(self, server: MastodonServer, net: BlueskyNetwork, db: Path) -> None:
        self.server, self.net = server, net
        token = populate(server, ["alice"])
        acc = net.accounts["bot"]
        self.config = parse({
            "database": str(db),
            "mastodon": {"enabled": True, "api_base_url": server.base_url, "access_token": token,
                         "poll_interval": 0.5},
            "bluesky": {"enabled": True, "service": net.pds_url, "handle": acc["handle"],
                        "app_password": acc["password"], "source": "firehose",
                        "firehose_url": net.firehose_url},
            "policy": {"prompt": "everyone", "bridged_wait_seconds": WAIT,
                       "max_prompts_per_author_per_day": 1000},
        })
        self.store = Store(db)
        self.runtime = Runtime(self.config, self.store, build_adapters(self.config, self.store))
        self.runtime.start()
        bluesky = next(a for a in self.runtime.adapters if a.network == "bluesky")
        wait(lambda: all(s.ws for s in bluesky.streams), "the firehose is connected")  # type: ignore[attr-defined]
        wait(lambda: server.open_streams() >= 2, "the Mastodon streams are open")

    def item(self, uri: str) -> dict[str, Any]:
        return wait(lambda: row(self.store, uri), f"the item {uri}")

    def settled(self, uri: str, state: str) -> dict[str, Any]:
        return wait(lambda: (r := row(self.store, uri)) and r["state"] == state and r, f"{uri} {state}")

    def boosted(self, uri: str) -> dict[str, Any]:
        return wait(lambda: (r := row(self.store, uri)) and r["boosted_at"] and r, f"{uri} boosted")

    def mastodon_prompts(self, status_id: str) -> list[Any]:
        return [s for s in self.server.statuses(BOT) if s.in_reply_to_id == status_id]

    def bluesky_prompts(self, uri: str) -> list[Any]:
        records = self.net.client("bot").com.atproto.repo.list_records(
            {"repo": self.net.did("bot"), "collection": "app.bsky.feed.post", "limit": 100}).records
        return [r for r in records if (r.value.reply and r.value.reply.parent.uri == uri)]

    def held(self) -> int:
        return self.store._exec("SELECT count(*) FROM intents WHERE state = 'held'").fetchone()[0]

    def stop(self) -> None:
        self.runtime.shutdown()


@pytest.fixture
def pair(server: MastodonServer, bsky_network: BlueskyNetwork, tmp_path: Path) -> Iterator[Pair]:
    if not bsky_network.has_appview:
        pytest.skip("the Bluesky tests need the AppView (PostgreSQL)")
    p = Pair(server, bsky_network, tmp_path / "bot.db")
    try:
        yield p
    finally:
        p.stop()


def test_a_bridged_pair_in_either_order_is_one_item(pair: Pair, bsky_network: BlueskyNetwork) -> None:
    server, net = pair.server, bsky_network
    carol, bob, dan = (net.client(n) for n in ("carol", "bob", "dan"))

    # 1. The original first: alice's status, then its copy on Bluesky (carol stands for her
    # bridged account). One prompt, on Mastodon; her answer there boosts both.
    status = server.post("alice", f"Ateliers numériques au centre social #{TAG}")
    wait(lambda: pair.mastodon_prompts(status["id"]), "the prompt to alice")
    copy = bsky_post(carol, "Ateliers numériques au centre social", bridgyOriginalUrl=status["url"])
    assert pair.settled(copy, "bridged")["same_as"] == status["uri"]
    prompt = pair.mastodon_prompts(status["id"])[0]
    server.post("alice", f"@{BOT} projet", in_reply_to_id=prompt.id, visibility="unlisted")
    assert pair.boosted(copy)["category"] == "projet"
    assert pair.boosted(status["uri"])["state"] == "classified"
    assert pair.bluesky_prompts(copy) == []

    # 2. The copy first, its original within the wait: the original is asked on Bluesky, the
    # copy's held prompt is dropped; bob's answer on Bluesky boosts the copy on Mastodon.
    rkey = record_key("test-original", "bob")
    bob_uri = f"at://{net.did('bob')}/app.bsky.feed.post/{rkey}"
    bob_copy = server.receive("bob.test@bsky.brid.gy", f"Un tiers-lieu à Villeneuve #{TAG}",
                              uri=CONVERT_PREFIX + bob_uri, url=f"https://bsky.app/profile/bob.test/post/{rkey}")
    assert pair.settled(bob_copy["uri"], "waiting") and pair.held() == 1
    assert bsky_post(bob, "Un tiers-lieu à Villeneuve", rkey=rkey) == bob_uri
    wait(lambda: row(pair.store, bob_uri) and row(pair.store, bob_uri)["prompt_uri"], "bob's prompt")
    assert pair.settled(bob_copy["uri"], "bridged")["same_as"] == bob_uri and pair.held() == 0
    bsky_answer(net, bob, row(pair.store, bob_uri)["prompt_uri"], "contexte")
    assert pair.boosted(bob_copy["uri"])["category"] == "contexte"
    assert pair.mastodon_prompts(bob_copy["id"]) == []

    # 3. The copy first and no original in time: the copy is asked on Mastodon; dan's original
    # joins it late, unasked; his answer comes on the copy's side and boosts the original.
    rkey = record_key("test-original", "dan")
    dan_uri = f"at://{net.did('dan')}/app.bsky.feed.post/{rkey}"
    dan_copy = server.receive("dan.test@bsky.brid.gy", f"Médiation numérique en QPV #{TAG}",
                              uri=CONVERT_PREFIX + dan_uri)
    prompt = wait(lambda: pair.mastodon_prompts(dan_copy["id"]), "the prompt to dan's copy",
                  timeout=WAIT + 15)[0]
    assert pair.settled(dan_copy["uri"], "prompted")
    bsky_post(dan, "Médiation numérique en QPV", rkey=rkey)
    assert pair.settled(dan_uri, "bridged")["same_as"] == dan_copy["uri"]
    server.receive("dan.test@bsky.brid.gy", f"@{BOT} initiative", in_reply_to_id=prompt.id,
                   uri=CONVERT_PREFIX + f"at://{net.did('dan')}/app.bsky.feed.post/{record_key('a', 'dan')}",
                   visibility="unlisted")
    assert pair.boosted(dan_uri)["category"] == "initiative"
    assert pair.boosted(dan_copy["uri"])["state"] == "classified"
    assert pair.bluesky_prompts(dan_uri) == []

    # Three shares, each listed once, on the network of the half that was asked.
    shares = pair.store.digest_shares("2000-01-01", "2100-01-01")
    assert sorted(network for _, network, *_ in shares) == ["bluesky", "mastodon", "mastodon"]
    reblogged = {sid for _, sid in server.reblogs()}
    assert {status["id"], bob_copy["id"], dan_copy["id"]} <= reblogged
