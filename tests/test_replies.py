"""Tagged replies (`[policy] replies`): a reply to someone else's post is a comment more often
than a share. The rules as pure code, then both networks' conversion of a reply."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import model as m
from bot.bluesky.convert import to_post as bluesky_post
from bot.config import parse
from bot.mastodon.convert import to_post as mastodon_post
from bot.rules import decide
from tests.mastodon_server import MastodonServer
from tests.mastodon_server.pytest_plugin import mastodon_server  # noqa: F401
from tests.test_mastodon_adapter import Bot, make_bot, populate_world, reply_of, settle, wait_for
from tests.test_rules import ALICE, BOB, BOT, item, kinds, post


def decide_with(policy: str, event: m.Event, **ctx: object) -> list[m.Action]:
    config = parse({"policy": {"replies": policy}}) if policy else parse({})
    return decide(event, m.Context(bot_ids=frozenset({BOT.id}), **ctx), config)  # type: ignore[arg-type]


def comment(text: str = "Bien vu ! #numpolville", link: str | None = None) -> m.Post:
    return post(text=text, reply_to=None, reply_to_author=BOB.id, link=link)


def test_by_default_a_reply_to_someone_else_is_recorded_never_prompted_nor_boosted() -> None:
    with_link = decide_with("", m.PostSeen(comment(link="https://example.org/a")))
    assert kinds(with_link) == ["Record"] and with_link[0].state == "seen"  # type: ignore[union-attr]
    without = decide_with("", m.PostSeen(comment()))
    assert kinds(without) == ["Record"] and without[0].state == "skipped"  # type: ignore[union-attr]
    classified = decide_with("", m.PostSeen(comment("Voilà #numpolville #contexte", "https://e.org/")))
    assert kinds(classified) == ["Record"]
    assert (classified[0].state, classified[0].category) == ("classified", "contexte")  # type: ignore[union-attr]


def test_curate_treats_a_reply_as_any_post_and_ignore_drops_it() -> None:
    assert kinds(decide_with("curate", m.PostSeen(comment()))) == ["Record", "Prompt"]
    assert kinds(decide_with("ignore", m.PostSeen(comment()))) == ["Ignore"]


def test_a_reply_in_the_author_s_own_thread_is_a_post_like_any_other() -> None:
    own = post(reply_to_author=ALICE.id)
    assert kinds(decide_with("ignore", m.PostSeen(own))) == ["Record", "Prompt"]


def test_a_reply_whose_parent_author_is_unknown_counts_as_someone_else_s() -> None:
    assert comment().replies_to_someone_else()
    assert replace(comment(), reply_to_author="").replies_to_someone_else()
    assert not replace(comment(), reply_to_author=None).replies_to_someone_else()


def test_a_moderator_classifying_a_recorded_reply_does_not_boost_it() -> None:
    decision = m.ModeratorDecision("mastodon", "u1", "projet", "mod")
    reply_item = item("seen", reply_to_other=True)
    assert kinds(decide_with("", decision, item=reply_item)) == ["Classify"]
    assert kinds(decide_with("curate", decision, item=reply_item)) == ["Classify", "Boost"]


def test_an_edit_adding_a_link_to_a_reply_lists_it() -> None:
    edited = comment(link="https://example.org/b")
    actions = decide_with("", m.PostEdited(edited), item=item("skipped", reply_to_other=True))
    assert kinds(actions) == ["Record"] and actions[0].state == "seen"  # type: ignore[union-attr]


def test_mastodon_names_the_parent_s_author() -> None:
    status = {"id": "7", "uri": "https://h.test/s/7", "created_at": "2026-11-23T09:00:00Z",
              "content": "<p>ok</p>", "visibility": "public", "in_reply_to_id": "5",
              "in_reply_to_account_id": "2", "account": {"id": "1", "acct": "alice"}}
    converted = mastodon_post(status)
    assert converted and converted.reply_to_author == "2" and converted.replies_to_someone_else()
    own = mastodon_post({**status, "in_reply_to_account_id": "1"})
    assert own and not own.replies_to_someone_else()
    top = mastodon_post({**status, "in_reply_to_id": None, "in_reply_to_account_id": None})
    assert top and top.reply_to_author is None


def test_bluesky_names_the_parent_s_author() -> None:
    parent = {"uri": "at://did:plc:bob/app.bsky.feed.post/3k", "cid": "bafy"}
    record = {"text": "ok #numpolville", "createdAt": "2026-11-23T09:00:00Z",
              "reply": {"root": parent, "parent": parent}}
    converted = bluesky_post(record, "did:plc:alice", "3l", "bafy2", bot_did="did:plc:bot")
    assert converted.reply_to_author == "did:plc:bob" and converted.replies_to_someone_else()
    own = bluesky_post(record, "did:plc:bob", "3l", "bafy2", bot_did="did:plc:bot")
    assert not own.replies_to_someone_else()
    assert bluesky_post({"text": "top"}, "did:plc:a", "3m", "c", bot_did="x").reply_to_author is None


# ---- end to end on the local Mastodon server ------------------------------------------------------

@pytest.fixture
def home_bot(mastodon_server: MastodonServer, tmp_path: Path) -> Iterator[tuple[MastodonServer, Bot]]:  # noqa: F811
    """One server family (the scenarios do not depend on it), the people of `populate_world`,
    and a running bot."""
    world = populate_world(mastodon_server)
    b = make_bot(world, tmp_path, world.world.numpolville_token).start()  # type: ignore[attr-defined]
    yield world, b
    b.stop()


def test_mastodon_a_comment_is_recorded_a_thread_is_curated(home_bot: tuple[MastodonServer, Bot]) -> None:
    world, b = home_bot
    original = world.post("bob", "Mon rapport https://example.org/bob")
    comment = world.post("alice", "Bien vu https://example.org/avis #numpolville",
                         in_reply_to_id=original["id"])
    chatter = world.post("alice", "Bravo ! #numpolville", in_reply_to_id=original["id"])
    thread = world.post("alice", "La suite https://example.org/suite #numpolville",
                        in_reply_to_id=chatter["id"])
    wait_for(lambda: reply_of(b, thread["id"]), what="the prompt in alice's own thread")
    settle(b)
    items = b.items()
    assert items[comment["id"]]["state"] == "seen"
    assert items[comment["id"]]["link"] == "https://example.org/avis"
    assert items[chatter["id"]]["state"] == "skipped"
    assert items[thread["id"]]["state"] == "prompted"
    assert [s.in_reply_to_id for s in b.prompts()] == [thread["id"]]
    assert world.reblogs() == []


def test_a_recorded_comment_is_listed_in_the_digest_only_with_a_link(tmp_path: Path) -> None:
    from bot.curator import Curator
    from bot.digest import build_digest
    from bot.digest.period import week_of
    from bot.store import Store

    when = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    config = parse({})
    store = Store(tmp_path / "bot.db", clock=lambda: when)
    curator = Curator(config, store)
    with_link = replace(comment(link="https://example.org/avis"), uri="c1", created_at=when)
    without = replace(comment(), uri="c2", created_at=when)
    for p in (with_link, without):
        curator.handle(m.PostSeen(p))
    digest = build_digest(store, config, week_of(when.date(), ZoneInfo(config.digest.timezone)))
    listed = [e.link or e.url for s in digest.sections for e in s.entries]
    assert listed == ["https://example.org/avis"]

