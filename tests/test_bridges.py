"""Bridged posts (#15): a Bridgy Fed copy and its original are one item. The markers each side
carries, then every order a pair can come in, through the real curator and store (the rules and
the SQL together). The same flows against the real servers are in `test_bridges_e2e.py`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot import model as m
from bot.bridges import bluesky_original, mastodon_original, original_authors
from bot.config import Config, parse
from bot.curator import Curator
from bot.export import rows as export_rows
from bot.store import Intent, Store

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
ALICE = m.Author("mastodon", "1", "alice@home.test", follows_bot=True)
ALICE_COPY = m.Author("bluesky", "did:plc:alicebridge", "alice.home.test.ap.brid.gy", follows_bot=True,
                      labels=("bridged-from-bridgy-fed-activitypub",))
BOB = m.Author("bluesky", "did:plc:bob", "bob.test", follows_bot=True)
BOB_COPY = m.Author("mastodon", "7", "bob.test@bsky.brid.gy", follows_bot=True)
ORIGINAL_URL = "https://home.test/@alice/1"
BOB_URI = "at://did:plc:bob/app.bsky.feed.post/3kbob"


def masto(author: m.Author = ALICE, text: str = "Un lien #numpolville",
          uri: str = "https://home.test/users/alice/statuses/1", url: str = ORIGINAL_URL,
          **kw: Any) -> m.Post:
    tags = frozenset(w[1:].lower() for w in text.split() if w.startswith("#"))
    return m.Post("mastodon", uri, uri.rsplit("/", 1)[-1], url, author, text, T0, tags=tags, **kw)


def bsky(author: m.Author = ALICE_COPY, text: str = "Un lien #numpolville",
         uri: str = "at://did:plc:alicebridge/app.bsky.feed.post/3kcopy", **kw: Any) -> m.Post:
    tags = frozenset(w[1:].lower() for w in text.split() if w.startswith("#"))
    return m.Post("bluesky", uri, f"{uri} cid", uri, author, text, T0, tags=tags, **kw)


ALICE_POST = masto()
ALICE_ON_BSKY = bsky(bridged_from=ORIGINAL_URL)
BOB_POST = bsky(BOB, uri=BOB_URI)
BOB_ON_MASTO = masto(BOB_COPY, uri="https://bsky.brid.gy/convert/ap/" + BOB_URI,
                     url="https://bsky.app/profile/bob.test/post/3kbob", bridged_from=BOB_URI)


class Bot:
    """The curator on a real store, with what a network would answer to its effects."""

    def __init__(self, tmp_path: Path, **policy: Any) -> None:
        self.config: Config = parse({"policy": policy})
        self.now = T0
        self.store = Store(tmp_path / "bot.db", clock=lambda: self.now)
        self.curator = Curator(self.config, self.store)

    def see(self, post: m.Post) -> list[m.Action]:
        """The effects to carry out for a post, each done at once (a prompt gets a uri)."""
        return self.done(self.curator.handle(m.PostSeen(post)))

    def event(self, event: m.Event) -> list[m.Action]:
        return self.done(self.curator.handle(event))

    def done(self, intents: list[Intent]) -> list[m.Action]:
        for intent in intents:
            a = intent.action
            result = f"prompt-of-{a.post.uri} p-ref" if isinstance(a, m.Prompt) else "boost-ref"
            self.store.intent_done(intent, result)
        return [i.action for i in intents]

    def item(self, post: m.Post) -> dict[str, Any]:
        row = self.store._one("SELECT * FROM items WHERE network = ? AND uri = ?", post.network, post.uri)
        assert row is not None, post.uri
        return row

    def intents(self, state: str) -> list[str]:
        return [k for (k,) in self.store._exec("SELECT key FROM intents WHERE state = ?", (state,))]

    def answer(self, author: m.Author, prompted: m.Post, text: str) -> list[m.Action]:
        network = author.network
        uri = self.item(prompted)["prompt_uri"]
        reply = (masto(author, text, uri=f"https://x/answer/{author.id}", url="https://x/a",
                       reply_to=uri) if network == "mastodon" else
                 bsky(author, text, uri=f"at://{author.id}/app.bsky.feed.post/answer", reply_to=uri))
        return self.see(reply)

    def listed(self) -> list[tuple[Any, ...]]:
        return self.store.digest_shares("2026-01-01", "2027-01-01")


def kinds(actions: list[m.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


@pytest.fixture
def bot(tmp_path: Path) -> Bot:
    return Bot(tmp_path)


# ---- what each side's copies carry -----------------------------------------------------------------

@pytest.mark.parametrize(("status", "expected"), [
    ({"uri": "https://bsky.brid.gy/convert/ap/" + BOB_URI, "account": {"acct": "bob.test@bsky.brid.gy"}},
     BOB_URI),
    ({"uri": "https://bsky.brid.gy/convert/ap/" + BOB_URI + "#bridgy-fed-create",
      "account": {"acct": "x@bsky.brid.gy"}}, BOB_URI),
    ({"uri": "https://bsky.brid.gy/r/https://example.org/",
      "account": {"acct": "BOB.test@BSKY.brid.gy"}}, ""),
    ({"uri": "https://home.test/users/alice/statuses/1", "account": {"acct": "alice"}}, None),
    ({"uri": "https://bsky.brid.gy.evil.test/convert/ap/" + BOB_URI,
      "account": {"acct": "m@evil.test"}}, None),
])
def test_a_mastodon_status_names_its_bluesky_original(status: dict[str, Any], expected: str | None) -> None:
    assert mastodon_original(status) == expected


@pytest.mark.parametrize(("record", "handle", "labels", "expected"), [
    ({"bridgyOriginalUrl": ORIGINAL_URL}, "alice.home.test.ap.brid.gy", (), ORIGINAL_URL),
    ({"bridgyOriginalUrl": "https://home.test/users/alice/statuses/1"}, "did:plc:x", (),
     "https://home.test/users/alice/statuses/1"),
    ({}, "alice.home.test.ap.brid.gy", (), ""),
    ({}, "did:plc:x", ("bridged-from-bridgy-fed-activitypub",), ""),
    ({"bridgyOriginalUrl": "javascript:alert(1)"}, "mallory.test", (), ""),  # a copy, naming nothing
    ({"bridgyOriginalUrl": 42}, "mallory.test", (), None),
    ({}, "bob.test", ("bot",), None),
])
def test_a_bluesky_record_names_its_fediverse_original(record: dict[str, Any], handle: str,
                                                       labels: tuple[str, ...], expected: str | None) -> None:
    assert bluesky_original(record, handle, labels) == expected


# ---- the original first ------------------------------------------------------------------------

def test_a_copy_after_its_original_joins_its_item(bot: Bot) -> None:
    assert kinds(bot.see(ALICE_POST)) == ["Prompt"]
    assert bot.see(ALICE_ON_BSKY) == []  # no prompt, no boost yet: nothing is classified
    copy = bot.item(ALICE_ON_BSKY)
    assert (copy["state"], copy["same_as"], copy["bridged_from"]) == ("bridged", ALICE_POST.uri, ORIGINAL_URL)
    effects = bot.answer(ALICE, ALICE_POST, "projet")
    assert sorted((type(a).__name__, getattr(a, "network", "")) for a in effects) == [
        ("Acknowledge", ""), ("Boost", "bluesky"), ("Boost", "mastodon")]
    assert (bot.item(ALICE_POST)["state"], bot.item(ALICE_POST)["category"]) == ("classified", "projet")
    assert (bot.item(ALICE_ON_BSKY)["state"], bot.item(ALICE_ON_BSKY)["category"]) == ("bridged", "projet")
    assert [row[1] for row in bot.listed()] == ["mastodon"]  # counted and listed once
    assert [i["uri"] for i in bot.store.classified_items(None, 10)] == [ALICE_POST.uri]  # the site
    # A Bluesky custom feed lists Bluesky posts: the share reaches it through its copy.
    assert [u for _, u in bot.store.feed_page("projet", None, 10)] == [ALICE_ON_BSKY.uri]
    assert [u for _, u in bot.store.feed_page(None, None, 10)] == [ALICE_ON_BSKY.uri]
    exported = {r["uri"]: r["same_as"] for r in export_rows(bot.store)}
    assert exported == {ALICE_POST.uri: None, ALICE_ON_BSKY.uri: ALICE_POST.uri}


def test_a_copy_of_a_classified_original_is_boosted_as_boost_bridged_says(tmp_path: Path) -> None:
    for boost_bridged, expected in ((True, ["Boost"]), (False, [])):
        bot = Bot(tmp_path / str(boost_bridged), boost_bridged=boost_bridged)
        assert kinds(bot.see(masto(text="Un lien #numpolville #projet"))) == ["Boost"]
        assert kinds(bot.see(ALICE_ON_BSKY)) == expected
        assert bot.item(ALICE_ON_BSKY)["category"] == "projet"


def test_an_original_found_by_its_activitypub_id_too(bot: Bot) -> None:
    bot.see(ALICE_POST)
    bot.see(replace(ALICE_ON_BSKY, bridged_from=ALICE_POST.uri))
    assert bot.item(ALICE_ON_BSKY)["same_as"] == ALICE_POST.uri


# ---- the copy first ----------------------------------------------------------------------------

def test_a_copy_first_holds_its_prompt_and_yields_to_its_original(bot: Bot) -> None:
    assert bot.see(BOB_ON_MASTO) == []  # the prompt is written down, held
    assert bot.item(BOB_ON_MASTO)["state"] == "waiting"
    assert bot.intents("held") == [f"prompt:mastodon:{BOB_ON_MASTO.uri}"]
    assert bot.listed() == []  # a waiting copy is not listed either
    assert kinds(bot.see(BOB_POST)) == ["Prompt"]  # asked where the author reads it
    assert bot.intents("held") == []
    copy = bot.item(BOB_ON_MASTO)
    assert (copy["state"], copy["same_as"]) == ("bridged", BOB_POST.uri)
    bot.now += timedelta(hours=1)
    assert kinds(bot.event(m.BridgeWaitOver("mastodon", BOB_ON_MASTO.uri))) == []  # nothing left to release
    assert kinds(bot.answer(BOB, BOB_POST, "contexte")) == ["Acknowledge", "Boost", "Boost"]
    assert [row[1] for row in bot.listed()] == ["bluesky"]


def test_a_copy_whose_original_does_not_come_is_asked_after_the_wait(bot: Bot) -> None:
    bot.see(BOB_ON_MASTO)
    bot.now += timedelta(seconds=bot.config.policy.bridged_wait_seconds - 1)
    assert bot.store.copies_waited(bot.config.policy.bridged_wait_seconds) == []
    bot.now += timedelta(seconds=1)
    waited = bot.store.copies_waited(bot.config.policy.bridged_wait_seconds)
    assert waited == [("mastodon", BOB_ON_MASTO.uri)]
    effects = bot.event(m.BridgeWaitOver("mastodon", BOB_ON_MASTO.uri))
    assert kinds(effects) == ["Prompt"] and effects[0].post == BOB_ON_MASTO  # type: ignore[attr-defined]
    assert bot.item(BOB_ON_MASTO)["state"] == "prompted"
    # The original comes late: it joins the copy's item and is not asked again.
    assert bot.see(BOB_POST) == []
    assert (bot.item(BOB_POST)["state"], bot.item(BOB_POST)["same_as"]) == ("bridged", BOB_ON_MASTO.uri)
    # The answer comes on the copy's side (Bridgy Fed carries the author's reply over).
    effects = bot.answer(BOB_COPY, BOB_ON_MASTO, "initiative")
    assert sorted((type(a).__name__, getattr(a, "network", "")) for a in effects) == [
        ("Acknowledge", ""), ("Boost", "bluesky"), ("Boost", "mastodon")]
    assert bot.item(BOB_POST)["category"] == "initiative"
    assert [row[1] for row in bot.listed()] == ["mastodon"]


def test_a_copy_waiting_for_an_author_who_opted_out_is_never_asked(bot: Bot) -> None:
    bot.see(BOB_ON_MASTO)
    bot.store._exec("UPDATE authors SET opted_out = 1 WHERE id = ?", (BOB_COPY.id,))
    assert bot.event(m.BridgeWaitOver("mastodon", BOB_ON_MASTO.uri)) == []
    assert bot.item(BOB_ON_MASTO)["state"] == "seen" and bot.intents("held") == []


def test_a_self_classified_copy_first_is_the_item_and_its_original_joins_it(bot: Bot) -> None:
    copy = replace(BOB_ON_MASTO, text="Un lien #numpolville #prospective",
                   tags=frozenset({"numpolville", "prospective"}))
    assert kinds(bot.see(copy)) == ["Boost"]
    assert kinds(bot.see(BOB_POST)) == ["Boost"]  # the original on its network, never asked
    assert bot.item(BOB_POST)["state"] == "bridged" and bot.item(BOB_POST)["category"] == "prospective"


# ---- decisions on a pair -------------------------------------------------------------------------

def test_withdrawing_or_deleting_one_half_of_a_pair(bot: Bot) -> None:
    bot.see(masto(text="Un lien #numpolville #projet"))
    bot.see(ALICE_ON_BSKY)
    effects = bot.event(m.ModeratorWithdrawal("mastodon", ALICE_POST.uri, "mod"))
    assert sorted(a.network for a in effects if isinstance(a, m.Unboost)) == ["bluesky", "mastodon"]
    assert bot.item(ALICE_ON_BSKY)["state"] == "withdrawn"
    assert bot.store.feed_page(None, None, 10) == []
    effects = bot.event(m.ModeratorRestore("mastodon", ALICE_POST.uri, "mod"))
    assert sorted(a.network for a in effects if isinstance(a, m.Boost)) == ["bluesky", "mastodon"]
    assert bot.item(ALICE_ON_BSKY)["state"] == "bridged"
    # Bridgy Fed deletes the copy: only the copy goes.
    assert kinds(bot.event(m.PostDeleted("bluesky", ALICE_ON_BSKY.uri))) == ["Unboost"]
    assert bot.item(ALICE_POST)["state"] == "classified"


def test_a_moderator_s_decision_on_the_copy_is_the_pair_s(bot: Bot) -> None:
    bot.see(ALICE_POST)
    bot.see(ALICE_ON_BSKY)
    effects = bot.event(m.ModeratorDecision("bluesky", ALICE_ON_BSKY.uri, "contexte", "mod"))
    assert sorted(a.network for a in effects if isinstance(a, m.Boost)) == ["bluesky", "mastodon"]
    assert (bot.item(ALICE_POST)["state"], bot.item(ALICE_POST)["category"]) == ("classified", "contexte")
    assert (bot.item(ALICE_ON_BSKY)["state"], bot.item(ALICE_ON_BSKY)["category"]) == ("bridged", "contexte")


def test_an_edit_of_a_copy_keeps_it_in_its_pair(bot: Bot) -> None:
    bot.see(ALICE_POST)
    bot.see(ALICE_ON_BSKY)
    bot.curator.handle(m.PostEdited(replace(ALICE_ON_BSKY, text="Un autre lien #numpolville")))
    copy = bot.item(ALICE_ON_BSKY)
    assert (copy["state"], copy["same_as"], copy["text"]) == ("bridged", ALICE_POST.uri,
                                                              "Un autre lien #numpolville")


def test_an_imported_copy_joins_its_original_without_a_boost(bot: Bot) -> None:
    bot.see(masto(text="Un lien #numpolville #projet"))
    assert bot.curator.handle(m.PostImported(ALICE_ON_BSKY)) == []
    assert bot.item(ALICE_ON_BSKY)["state"] == "bridged"


# ---- copies that name no original ---------------------------------------------------------------

def test_an_unnamed_copy_is_matched_by_its_author_s_other_handle_and_time(bot: Bot) -> None:
    """Bridgy Fed keeps the original's time: same second, the author's bridged handle."""
    bot.see(ALICE_POST)
    late = replace(ALICE_ON_BSKY, uri=ALICE_ON_BSKY.uri + "2", bridged_from="",
                   created_at=T0 + timedelta(seconds=1))
    bot.see(late)
    assert bot.item(late)["state"] == "waiting"  # another second: not taken for the same share
    bot.see(replace(ALICE_ON_BSKY, bridged_from=""))
    assert bot.item(ALICE_ON_BSKY)["same_as"] == ALICE_POST.uri


def test_an_original_finds_the_unnamed_copy_recorded_first(bot: Bot) -> None:
    unnamed = replace(BOB_ON_MASTO, uri="https://bsky.brid.gy/r/elsewhere", bridged_from="")
    bot.see(unnamed)
    assert kinds(bot.see(BOB_POST)) == ["Prompt"]
    assert (bot.item(unnamed)["state"], bot.item(unnamed)["same_as"]) == ("bridged", BOB_POST.uri)


@pytest.mark.parametrize(("network", "handle", "expected"), [
    ("bluesky", "alice.home.test.ap.brid.gy", ("alice@home.test", "alice")),
    ("bluesky", "Alice.Home.Test.AP.brid.gy", ("alice@home.test", "alice")),
    ("bluesky", "alice.bsky.social", ()),
    ("mastodon", "bob.test@bsky.brid.gy", ("bob.test",)),
    ("mastodon", "bob@home.test", ()),
])
def test_original_authors(network: m.Network, handle: str, expected: tuple[str, ...]) -> None:
    assert original_authors(network, handle) == expected


def test_a_copy_of_the_bot_s_own_post_is_ignored(bot: Bot) -> None:
    """The bot's digest thread bridged to the other network carries the hashtag: never curated."""
    bot.curator.bot_ids |= {"did:plc:thebot", "https://home.test/@numpolbot"}
    mine = [replace(ALICE_ON_BSKY, bridged_from="https://home.test/@numpolbot/5"),
            replace(BOB_ON_MASTO, bridged_from="at://did:plc:thebot/app.bsky.feed.post/3kdigest")]
    for post in mine:
        assert bot.curator.handle(m.PostSeen(post)) == []
        assert bot.curator.handle(m.PostImported(post)) == []
    assert bot.store._one("SELECT count(*) AS n FROM items") == {"n": 0}
    assert kinds(bot.see(replace(ALICE_ON_BSKY, bridged_from="https://home.test/@numpolbotx/5"))) == []
    assert bot.item(ALICE_ON_BSKY)["state"] == "waiting"  # someone else's


def test_a_public_copy_of_a_private_original_is_never_boosted(bot: Bot) -> None:
    """Bridgy Fed bridges public posts only: a public "copy" of a private post is someone's claim."""
    private = replace(ALICE_POST, visibility="private")
    bot.see(private)
    bot.see(ALICE_ON_BSKY)
    assert kinds(bot.answer(ALICE, private, "projet")) == ["Acknowledge"]
    classified = replace(ALICE_POST, uri=ALICE_POST.uri + "0", url=ORIGINAL_URL + "0", visibility="private",
                         text="Un lien #numpolville #projet", tags=frozenset({"numpolville", "projet"}))
    bot.see(classified)
    assert bot.see(replace(ALICE_ON_BSKY, uri=ALICE_ON_BSKY.uri + "0", bridged_from=ORIGINAL_URL + "0")) == []


def test_an_ignored_reply_leaves_its_waiting_copy_as_it_is(tmp_path: Path) -> None:
    """The copy's server did not know the parent (no reply there); the original is a reply to
    someone else, not kept under replies = "ignore": the copy goes on waiting alone."""
    bot = Bot(tmp_path, replies="ignore")
    bot.see(BOB_ON_MASTO)
    assert bot.see(replace(BOB_POST, reply_to="at://did:plc:x/app.bsky.feed.post/p",
                           reply_to_author="did:plc:x")) == []
    assert bot.store.item("bluesky", BOB_POST.uri) is None
    assert bot.item(BOB_ON_MASTO)["state"] == "waiting" and bot.intents("held")


def test_a_copy_whose_held_prompt_is_gone_stops_waiting(bot: Bot) -> None:
    bot.see(BOB_ON_MASTO)
    bot.store._exec("DELETE FROM intents")
    assert bot.event(m.BridgeWaitOver("mastodon", BOB_ON_MASTO.uri)) == []
    assert bot.item(BOB_ON_MASTO)["state"] == "seen"  # not asked again every two seconds
