"""The desk's decisions as curation rules (pure): withdraw, restore, block, unblock."""

from __future__ import annotations

from test_rules import ALICE, CFG, item, kinds, post, seen

from bot import model as m
from bot.rules import decide


def desk(event: m.Event, **ctx: object) -> list[m.Action]:
    return decide(event, m.Context(**ctx), CFG)  # type: ignore[arg-type]


def test_withdraw_unboosts_what_was_boosted():
    w = m.ModeratorWithdrawal("mastodon", "u1", "camille")
    assert kinds(desk(w, item=item("classified", category="projet", boosted=True))) == ["SetState", "Unboost"]
    assert kinds(desk(w, item=item("classified", category="projet"))) == ["SetState"]
    why = desk(w, item=item("classified", category="projet"))[0].reason
    assert why == "a moderator (camille) withdrew it"
    assert kinds(desk(w, item=item("withdrawn"))) == ["Ignore"] and kinds(desk(w)) == ["Ignore"]


def test_restore_brings_back_what_it_was():
    r = m.ModeratorRestore("mastodon", "u1", "camille")
    back = desk(r, item=item("withdrawn", category="projet"))
    assert kinds(back) == ["SetState", "Boost"] and back[0].state == "classified"
    assert kinds(desk(r, item=item("withdrawn", category="projet", visibility="unlisted"))) == ["SetState"]
    queue = desk(r, item=item("withdrawn"))
    assert kinds(queue) == ["SetState"] and queue[0].state == "seen"  # back in the desk's queue
    # Not while the withdrawal's unboost is under way (it would undo the boost the restore makes).
    assert kinds(desk(r, item=item("withdrawn", category="projet", boosted=True))) == ["Ignore"]
    for state in ("classified", "deleted", "prompted"):
        assert kinds(desk(r, item=item(state))) == ["Ignore"], state  # a deleted post stays deleted


def test_block_stops_boosts_and_prompts_and_unblock_lists_again():
    boosted = (item("classified", category="projet", boosted=True),
               item("classified", uri="u2", ref="u2-ref", boosted=True))
    b = m.ModeratorBlock("mastodon", ALICE.id, ALICE.handle, "camille")
    actions = desk(b, boosted_items=boosted)
    assert kinds(actions) == ["SetBlocked", "Unboost", "Unboost"]
    assert [a.uri for a in actions[1:]] == ["u1", "u2"]
    assert kinds(desk(b, author=m.AuthorState(blocked=True))) == ["Ignore"]
    u = m.ModeratorBlock("mastodon", ALICE.id, ALICE.handle, "camille", blocked=False)
    assert kinds(desk(u, author=m.AuthorState(blocked=True), boosted_items=boosted)) == ["SetBlocked"]
    assert kinds(desk(u)) == ["Ignore"]
    # A blocked author's tagged post, even with a category hashtag: kept, never prompted nor boosted.
    recorded = seen(post(text="Lien #numpolville #projet"), author=m.AuthorState(blocked=True))
    assert kinds(recorded) == ["Record"] and recorded[0].state == "seen"
