"""Edits, end to end on both networks: an edit adding the hashtag makes a new item, one removing
it withdraws the item, one changing the link updates it (Mastodon's `status.update` on the streams,
and without them the poll: `update` notifications and the tag timeline's newest page; Bluesky's
record updates on the firehose)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atproto import models

from bot import model as m
from tests.bsky_network import BlueskyNetwork
from tests.mastodon_server import MastodonServer
from tests.mastodon_server.pytest_plugin import flavoured_server, mastodon_server  # noqa: F401
from tests.test_bluesky_e2e import Bot as BskyBot
from tests.test_bluesky_e2e import bot_factory, people, row, wait  # noqa: F401
from tests.test_mastodon_adapter import Bot as MastodonBot
from tests.test_mastodon_adapter import make_bot, populate_world, reply_of, settle, wait_for
from tests.test_replies import comment, decide_with, home_bot  # noqa: F401
from tests.test_rules import item, kinds, post

TAG = "numpolville"


def test_an_edit_putting_the_hashtag_back_revives_the_item_without_a_second_prompt() -> None:
    back = decide_with("", m.PostEdited(post()), item=item("withdrawn", category="projet"))
    assert kinds(back) == ["Record", "Boost"] and back[0].state == "classified"  # type: ignore[union-attr]
    unclassified = decide_with("", m.PostEdited(post()), item=item("withdrawn"))
    assert kinds(unclassified) == ["Record"] and unclassified[0].state == "seen"  # type: ignore[union-attr]
    comment_back = decide_with("", m.PostEdited(comment(link="https://e.org")),
                               item=item("withdrawn", category="projet", reply_to_other=True))
    assert kinds(comment_back) == ["Record"]


# ---- Mastodon ------------------------------------------------------------------------------------

def test_mastodon_edits_add_the_tag_change_the_link(
        home_bot: tuple[MastodonServer, MastodonBot]) -> None:  # noqa: F811
    world, b = home_bot
    late = world.post("alice", "Un rapport https://example.org/r")
    time.sleep(0.3)
    assert b.item(late["id"]) is None
    world.edit(late["id"], f"Un rapport https://example.org/r #{TAG}")
    wait_for(lambda: reply_of(b, late["id"]), what="the prompt for the post the edit tagged")

    moved = world.post("bob", f"Premier lien https://example.org/v1 #{TAG}")
    wait_for(lambda: reply_of(b, moved["id"]), what="the prompt")
    world.edit(moved["id"], f"Le bon lien https://example.org/v2 #{TAG}")
    wait_for(lambda: b.item(moved["id"])["link"] == "https://example.org/v2", what="the new link")
    settle(b)
    assert [s.in_reply_to_id for s in b.prompts()] == [late["id"], moved["id"]], "one prompt each"
    assert b.item(moved["id"])["state"] == "prompted"


def test_mastodon_edits_found_by_the_poll_alone(flavoured_server: MastodonServer,  # noqa: F811
                                                tmp_path: Path) -> None:
    """`streaming = false`: the tag timeline's newest page, read each poll, shows the edits that
    add the hashtag or change the link; an item it no longer shows is read again (an edit removed
    the hashtag); an edit of a boosted status also comes as an `update` notification (not from
    GoToSocial)."""
    world = populate_world(flavoured_server)
    b = make_bot(world, tmp_path, world.world.numpolville_token, streaming=False).start(streams=0)  # type: ignore[attr-defined]
    try:
        late = world.post("alice", "Un rapport https://example.org/r")
        moved = world.post("bob", f"Premier lien https://example.org/v1 #{TAG} #projet")
        wait_for(lambda: world.reblogs(), what="the boost of the classified post")
        assert b.item(late["id"]) is None
        world.edit(late["id"], f"Un rapport https://example.org/r #{TAG}")
        wait_for(lambda: reply_of(b, late["id"]), what="the prompt for the post the edit tagged")
        world.edit(moved["id"], f"Le bon lien https://example.org/v2 #{TAG} #projet")
        wait_for(lambda: b.item(moved["id"])["link"] == "https://example.org/v2", what="the new link")
        world.edit(moved["id"], "Le bon lien https://example.org/v2, sans tag")
        wait_for(lambda: b.item(moved["id"])["state"] == "withdrawn", what="withdrawn by the edit")
        wait_for(lambda: not world.reblogs(), what="the unboost")
        world.edit(late["id"], "Un rapport https://example.org/r, finalement sans tag")
        wait_for(lambda: b.item(late["id"])["state"] == "withdrawn", what="the prompted one withdrawn")
        settle(b)
        assert [s.in_reply_to_id for s in b.prompts()] == [late["id"]], "one prompt, none again"
        print(f"\n{world.world.flavour.name}: {len(world.requests('GET', r'/api/v1/timelines/tag/'))}"
              f" tag timeline requests, {len(world.requests('GET', r'/api/v1/notifications'))} "
              f"notification requests, {len(world.requests('GET', r'/api/v1/statuses/[^/]+$'))} "
              f"statuses read again")
    finally:
        b.stop()


# ---- Bluesky -------------------------------------------------------------------------------------

def put_post(client: Any, uri: str, text: str, **record: Any) -> None:
    """Edit a post in place (com.atproto.repo.putRecord, as clients that edit do)."""
    did, _, rkey = uri.removeprefix("at://").split("/", 2)
    old = client.com.atproto.repo.get_record({"repo": did, "collection": "app.bsky.feed.post",
                                              "rkey": rkey}).value
    client.com.atproto.repo.put_record(models.ComAtprotoRepoPutRecord.Data(
        repo=did, collection="app.bsky.feed.post", rkey=rkey,
        record={"$type": "app.bsky.feed.post", "text": text, "createdAt": old.created_at, **record}))


def test_bluesky_edits_and_a_reply(bot_factory: Callable[..., BskyBot],  # noqa: F811
                                   people: dict[str, Any], bsky_network: BlueskyNetwork) -> None:  # noqa: F811
    b = bot_factory()
    alice, bob = people["alice"], people["bob"]
    n = time.time_ns()
    # an edit adding the tag: a new item, prompted (alice follows the bot)
    late = alice.send_post(text=f"Un projet {n}")
    time.sleep(0.5)
    assert row(b.store, late.uri) is None
    put_post(alice, late.uri, f"Un projet {n} #{TAG} https://example.org/p{n}")
    item = wait(lambda: (r := row(b.store, late.uri)) and r["prompt_uri"] and r, "prompted after the edit")
    assert item["link"] == f"https://example.org/p{n}"  # from the text: the edit made no facet
    # an edit changing the link, then one removing the tag
    put_post(alice, late.uri, f"Un projet {n} #{TAG} https://example.org/q{n}")
    wait(lambda: row(b.store, late.uri)["link"] == f"https://example.org/q{n}", "the new link")
    put_post(alice, late.uri, f"Un projet {n}, finalement rien")
    wait(lambda: row(b.store, late.uri)["state"] == "withdrawn", "withdrawn by the edit")
    # a tagged reply to bob's post: recorded with its link, never prompted nor reposted
    parent = bsky_network.wait_visible(bob.send_post(text=f"Mon article {n}").uri)
    ref = models.AppBskyFeedPost.ReplyRef(parent=models.create_strong_ref(parent),
                                          root=models.create_strong_ref(parent))
    comment = alice.send_post(text=f"Bien vu https://example.org/c{n} #{TAG}", reply_to=ref)
    witness = alice.send_post(text=f"Témoin {n} #{TAG}")
    wait(lambda: (r := row(b.store, witness.uri)) and r["prompt_uri"], "the witness prompted")
    recorded = row(b.store, comment.uri)
    assert recorded and (recorded["state"], recorded["link"]) == ("seen", f"https://example.org/c{n}")
    assert recorded["prompt_uri"] is None and recorded["boost_ref"] is None
    assert "someone else's post" in recorded["reason"]
