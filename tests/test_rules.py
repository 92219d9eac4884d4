"""Every curation rule, as pure code: an event and a context in, actions out."""

from dataclasses import replace
from datetime import datetime, timezone

from bot import model as m
from bot.config import parse
from bot.rules import decide

CFG = parse({"policy": {"moderators": ["mod@home.test"]}})
T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
ALICE = m.Author("mastodon", "1", "alice@home.test", follows_bot=True)
BOB = m.Author("mastodon", "2", "bob@home.test", follows_bot=True)
MOD = m.Author("mastodon", "9", "mod@home.test")
BOT = m.Author("mastodon", "100", "numpolbot@home.test")


def post(author: m.Author = ALICE, text: str = "Un lien #numpolville", uri: str = "u1",
         **kw: object) -> m.Post:
    tags = frozenset(w[1:].lower() for w in text.split() if w.startswith("#"))
    return m.Post("mastodon", uri, uri + "-ref", "https://x/" + uri, author, text, T0, tags=tags,
                  **kw)  # type: ignore[arg-type]


def item(state: m.ItemState = "prompted", **kw: object) -> m.Item:
    base = m.Item("mastodon", "u1", "u1-ref", ALICE.id, ALICE.handle, state, prompt_uri="p1")
    return replace(base, **kw)  # type: ignore[arg-type]


def kinds(actions: list[m.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def seen(p: m.Post, **ctx: object) -> list[m.Action]:
    return decide(m.PostSeen(p), m.Context(bot_ids=frozenset({BOT.id}), **ctx), CFG)  # type: ignore[arg-type]


def answer(text: str, author: m.Author = ALICE, it: m.Item | None = None) -> list[m.Action]:
    reply = post(author, text, uri="r1", reply_to="p1")
    return seen(reply, prompted_item=it or item())


def test_a_follower_s_tagged_post_is_recorded_and_prompted() -> None:
    actions = seen(post())
    assert kinds(actions) == ["Record", "Prompt"]
    assert actions[0].state == "prompted"  # type: ignore[union-attr]
    assert actions[1].visibility == "unlisted"  # type: ignore[union-attr]


def test_a_non_follower_is_recorded_not_prompted() -> None:
    actions = seen(post(replace(ALICE, follows_bot=False)))
    assert kinds(actions) == ["Record"] and actions[0].state == "seen"  # type: ignore[union-attr]


def test_a_non_follower_who_mentions_the_bot_is_prompted() -> None:
    assert "Prompt" in kinds(seen(post(replace(ALICE, follows_bot=False), mentions_bot=True)))


def test_prompt_policies() -> None:
    stranger = post(replace(ALICE, follows_bot=False))
    everyone = parse({"policy": {"prompt": "everyone"}})
    never = parse({"policy": {"prompt": "never"}})
    assert "Prompt" in kinds(decide(m.PostSeen(stranger), m.Context(), everyone))
    assert "Prompt" not in kinds(decide(m.PostSeen(post()), m.Context(), never))


def test_the_hashtag_is_configuration_and_case_insensitive() -> None:
    cfg = parse({"hashtag": "#InclusionNum"})
    assert "Prompt" in kinds(decide(m.PostSeen(post(text="x #inclusionnum")), m.Context(), cfg))
    assert kinds(decide(m.PostSeen(post()), m.Context(), cfg)) == ["Ignore"]


def test_the_bot_never_acts_on_its_own_posts() -> None:
    assert kinds(seen(post(BOT))) == ["Ignore"]


def test_a_category_hashtag_classifies_without_a_prompt_and_boosts() -> None:
    actions = seen(post(text="Un projet #numpolville #projet"))
    assert kinds(actions) == ["Record", "Boost"]
    assert actions[0].category == "projet"  # type: ignore[union-attr]


def test_never_boost_a_non_public_post() -> None:
    for vis in ("unlisted", "private", "direct"):
        actions = seen(post(text="#numpolville #projet", visibility=vis))
        assert "Boost" not in kinds(actions)
    assert "Boost" not in kinds(answer("2", it=item(visibility="private")))


def test_prompts_are_never_more_public_than_the_post() -> None:
    assert seen(post(visibility="private"))[1].visibility == "direct"  # type: ignore[union-attr]
    assert seen(post(visibility="direct"))[1].visibility == "direct"  # type: ignore[union-attr]


def test_authors_who_refuse_bots_are_left_alone() -> None:
    for bio in ("Pas de robots #NoBot", "#noindex", "je dis #NOAI"):
        assert kinds(seen(post(replace(ALICE, bio=bio)))) == ["Ignore"]


def test_one_prompt_per_post() -> None:
    assert kinds(seen(post(), item=item())) == ["Ignore"]


def test_an_opted_out_author_is_not_prompted() -> None:
    actions = seen(post(), author=m.AuthorState(opted_out=True))
    assert kinds(actions) == ["Record"]


def test_daily_prompt_limit() -> None:
    actions = seen(post(), author=m.AuthorState(prompts_today=5))
    assert kinds(actions) == ["Record"] and "limit" in actions[0].reason  # type: ignore[union-attr]


def test_boost_when_detected_policy() -> None:
    cfg = parse({"policy": {"boost": "detected"}})
    assert kinds(decide(m.PostSeen(post()), m.Context(), cfg)) == ["Record", "Prompt", "Boost"]


def test_the_author_s_answer_classifies_acknowledges_and_boosts() -> None:
    actions = answer("c'est plutôt du contexte")
    assert kinds(actions) == ["Classify", "Acknowledge", "Boost"]
    assert actions[0].category == "contexte"  # type: ignore[union-attr]


def test_acknowledge_by_reply_or_not_at_all() -> None:
    reply_cfg = parse({"policy": {"acknowledge": "reply"}})
    reply = post(ALICE, "2", uri="r1", reply_to="p1")
    assert kinds(decide(m.PostSeen(reply), m.Context(prompted_item=item()), reply_cfg)) == [
        "Classify", "Reply", "Boost"]
    none_cfg = parse({"policy": {"acknowledge": "none"}})
    assert kinds(decide(m.PostSeen(reply), m.Context(prompted_item=item()), none_cfg)) == [
        "Classify", "Boost"]


def test_someone_else_s_answer_changes_nothing() -> None:
    assert kinds(answer("2", author=BOB)) == ["Ignore"]


def test_a_moderator_may_answer() -> None:
    assert kinds(answer("3", author=MOD))[0] == "Classify"


def test_an_author_may_correct_their_answer_without_a_second_boost() -> None:
    actions = answer("finalement 4", it=item("classified", category="contexte", boosted=True))
    assert kinds(actions) == ["Classify", "Acknowledge"]


def test_stop_opts_out_and_confirms() -> None:
    actions = answer("stop")
    assert kinds(actions) == ["OptOut", "Reply"]
    assert actions[1].text_key == "opt_out"  # type: ignore[union-attr]


def test_a_second_stop_is_not_confirmed_again() -> None:
    again = seen(post(text="stop", uri="r2", reply_to="p1"), prompted_item=item(),
                 author=m.AuthorState(opted_out=True))
    assert kinds(again) == ["Ignore"]


def test_help_and_unknown_answers() -> None:
    assert [a.text_key for a in answer("aide") if isinstance(a, m.Reply)] == ["help"]
    assert kinds(answer("bof")) == ["NoteReply", "Reply"]
    assert kinds(answer("bof", it=item(unknown_replies=1))) == ["Ignore"]


def test_one_help_reply_and_one_not_understood_reply_per_item() -> None:
    first = answer("aide")
    assert kinds(first) == ["NoteReply", "Reply"]
    assert first[0] == m.NoteReply("mastodon", "u1", "help")
    again = answer("aide", it=item(help_replies=1))
    assert kinds(again) == ["Ignore"] and "help already replied" in again[0].reason  # type: ignore[union-attr]
    # the two limits are separate: help given, a first unclear answer is still explained once
    assert kinds(answer("bof", it=item(help_replies=1))) == ["NoteReply", "Reply"]
    assert kinds(answer("aide", it=item(unknown_replies=1))) == ["NoteReply", "Reply"]


BOTTY = replace(ALICE, id="7", handle="news@home.test", bot=True)


def test_a_bot_account_is_recorded_never_prompted() -> None:
    actions = seen(post(BOTTY))
    assert kinds(actions) == ["Record"] and actions[0].state == "seen"  # type: ignore[union-attr]
    assert "bot account" in actions[0].reason  # type: ignore[union-attr]
    labelled = m.Author("bluesky", "did:plc:x", "feed.test", follows_bot=True, labels=("bot",))
    assert labelled.is_bot() and "Prompt" not in kinds(seen(post(labelled)))


def test_a_bot_that_tags_a_category_is_classified_and_boosted() -> None:
    actions = seen(post(BOTTY, text="Un projet #numpolville #projet"))
    assert kinds(actions) == ["Record", "Boost"] and actions[0].category == "projet"  # type: ignore[union-attr]


def test_the_bot_policy_is_configurable() -> None:
    ignore, prompt = parse({"policy": {"bots": "ignore"}}), parse({"policy": {"bots": "prompt"}})
    ctx = m.Context(bot_ids=frozenset({BOT.id}))
    assert kinds(decide(m.PostSeen(post(BOTTY)), ctx, ignore)) == ["Ignore"]
    assert kinds(decide(m.PostSeen(post(BOTTY)), ctx, prompt)) == ["Record", "Prompt"]
    assert CFG.policy.bots == "classify"


def test_answers_to_a_withdrawn_item_are_ignored() -> None:
    assert kinds(answer("2", it=item("deleted"))) == ["Ignore"]


def test_a_delete_withdraws_and_unboosts() -> None:
    ev = m.PostDeleted("mastodon", "u1")
    assert kinds(decide(ev, m.Context(item=item("classified", boosted=True)), CFG)) == ["SetState", "Unboost"]
    assert kinds(decide(ev, m.Context(item=item()), CFG)) == ["SetState"]
    assert kinds(decide(ev, m.Context(), CFG)) == ["Ignore"]


def test_an_edit_removing_the_hashtag_withdraws() -> None:
    edited = post(text="plus de tag")
    actions = decide(m.PostEdited(edited), m.Context(item=item("classified", boosted=True)), CFG)
    assert kinds(actions) == ["SetState", "Unboost"]
    assert actions[0].state == "withdrawn"  # type: ignore[union-attr]
    kept = decide(m.PostEdited(post()), m.Context(item=item()), CFG)
    assert kinds(kept) == ["Record"]


def test_an_edit_that_adds_the_hashtag_is_a_new_post() -> None:
    assert kinds(decide(m.PostEdited(post()), m.Context(), CFG)) == ["Record", "Prompt"]


def test_prompt_timeout() -> None:
    ev = m.PromptTimedOut("mastodon", "u1")
    actions = decide(ev, m.Context(item=item()), CFG)
    assert kinds(actions) == ["SetState"] and actions[0].state == "expired"  # type: ignore[union-attr]
    assert kinds(decide(ev, m.Context(item=item("classified")), CFG)) == ["Ignore"]


def test_moderator_decision() -> None:
    ev = m.ModeratorDecision("mastodon", "u1", "initiative", "cli")
    assert kinds(decide(ev, m.Context(item=item()), CFG)) == ["Classify", "Boost"]
    assert kinds(decide(ev, m.Context(item=item(boosted=True)), CFG)) == ["Classify"]
    bad = m.ModeratorDecision("mastodon", "u1", "nope", "cli")
    assert kinds(decide(bad, m.Context(item=item()), CFG)) == ["Ignore"]
    assert kinds(decide(ev, m.Context(), CFG)) == ["Ignore"]


def test_untagged_posts_are_ignored() -> None:
    assert kinds(seen(post(text="rien à voir"))) == ["Ignore"]


def test_messages_list_the_categories_in_the_configured_language() -> None:
    from bot.messages import message

    prompt = message(CFG, m.Prompt(post(), "unlisted"))
    assert "2\ufe0f\u20e3 Contexte" in prompt and "numpolville" in prompt and "stop" in prompt
    assert "#" not in prompt  # a tagged prompt would land in the timeline the bot curates
    english = parse({"language": "en"})
    thanks = message(english, m.Reply(post(), "thanks", "prospective"))
    assert thanks == 'Thanks! Filed under "Foresight".'


def test_an_erased_author_s_old_posts_are_unseen() -> None:
    erased = m.AuthorState(erased_at=T0)
    old, new = post(), replace(post(), created_at=T0.replace(hour=10))
    assert kinds(seen(old, author=erased)) == ["Unseen"]
    assert kinds(seen(post(text="aide", uri="r1", reply_to="p1"), prompted_item=item(),
                      author=erased)) == ["Unseen"]
    assert kinds(seen(new, author=erased)) == ["Record", "Prompt"]  # she shares again
