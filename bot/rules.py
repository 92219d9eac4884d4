"""The curation rules: pure functions from an event (and what the store knows) to actions.

No I/O here: the shell loads the Context, calls `decide`, stores what it returns and hands the
network effects to the adapter. Each rule says why it acts, so the event log can tell a person.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from bot.config import Config
from bot.model import (
    Acknowledge,
    Action,
    Boost,
    BridgeWaitOver,
    Classify,
    Context,
    DropPrompt,
    Event,
    Ignore,
    Item,
    ItemState,
    Link,
    ModeratorBlock,
    ModeratorDecision,
    ModeratorRestore,
    ModeratorWithdrawal,
    Network,
    NoteReply,
    OptOut,
    Post,
    PostDeleted,
    PostEdited,
    PostImported,
    PostSeen,
    Prompt,
    PromptTimedOut,
    Record,
    ReleasePrompt,
    Reply,
    SetBlocked,
    SetState,
    Unboost,
    Unseen,
    Visibility,
)
from bot.parser import category_from_tags, parse_answer

CLOSED = ("withdrawn", "deleted")
NEVER = "prompt policy is never"


def decide(event: Event, ctx: Context, config: Config) -> list[Action]:
    """Every action the bot takes for one event, in order."""
    if isinstance(event, PostSeen):
        return _post_seen(event.post, ctx, config)
    if isinstance(event, PostEdited):
        return _post_edited(event.post, ctx, config)
    if isinstance(event, PostImported):
        return _post_imported(event.post, ctx, config)
    if isinstance(event, PostDeleted):
        return _withdraw(ctx, "deleted", "the author deleted the post", event.uri, event.network)
    if isinstance(event, PromptTimedOut):
        return _timed_out(event, ctx)
    if isinstance(event, BridgeWaitOver):
        return _wait_over(event, ctx)
    if isinstance(event, ModeratorWithdrawal):
        return _withdraw(ctx, "withdrawn", f"a moderator ({event.by}) withdrew it", event.uri,
                         event.network)
    if isinstance(event, ModeratorRestore):
        return _restore(event, ctx, config)
    if isinstance(event, ModeratorBlock):
        return _block(event, ctx)
    return _moderator_decision(event, ctx, config)


def _post_seen(post: Post, ctx: Context, config: Config) -> list[Action]:
    if post.author.id in ctx.bot_ids or _bridged_from_the_bot(post, ctx.bot_ids):
        return [Ignore(post.network, post.uri, "the bot's own post (or its Bridgy Fed copy)")]
    if _erased(post, ctx):
        return [Unseen(post.network, post.uri)]
    if ctx.prompted_item is not None:
        return _answer(post, ctx.prompted_item, ctx, config)
    if post.has_tag(config.hashtag):
        return _tagged(post, ctx, config)
    return [Ignore(post.network, post.uri, "neither tagged nor an answer to a prompt")]


def _bridged_from_the_bot(post: Post, bot_ids: frozenset[str]) -> bool:
    """A Bridgy Fed copy of one of the bot's posts (its digest thread): named by the bot's DID
    in an at:// URI, or under the bot's Mastodon web or ActivityPub address."""
    named = post.bridged_from or ""
    return bool(named) and any(named.startswith(f"at://{i}/") or named.startswith(f"{i}/")
                               for i in bot_ids)


def _erased(post: Post, ctx: Context) -> bool:
    """A post from before its author's erasure: as if never seen."""
    erased_at = ctx.author.erased_at
    return erased_at is not None and post.created_at <= erased_at


def _tagged(post: Post, ctx: Context, config: Config) -> list[Action]:
    if ctx.item is not None:
        return [Ignore(post.network, post.uri, "already recorded")]
    if post.author.refuses_bots():
        return [Ignore(post.network, post.uri, "the author's bio asks bots to stay away")]
    if post.author.is_bot() and config.policy.bots == "ignore":
        return [Ignore(post.network, post.uri, "a bot account (policy.bots = ignore)")]
    if ctx.author.blocked:  # kept for the desk, never prompted, boosted nor listed
        return [Record(post, "seen", reason="a moderator blocked the author")]
    twin = ctx.twin
    if twin is not None and not _yields(twin, post):
        return _joins(post, twin, config)
    actions = _curated(post, ctx, config)
    if twin is not None:
        return [*actions, *_takes_over(post, twin, actions, config)]
    if post.bridged_from is not None:
        return _held(post, actions, config)
    return actions


def _curated(post: Post, ctx: Context, config: Config) -> list[Action]:
    """A new tagged post on its own: recorded, classified by its tags, or prompted."""
    if post.replies_to_someone_else() and config.policy.replies != "curate":
        return _reply_to_someone_else(post, config)
    category = category_from_tags(post.tags, post.text, config.categories)
    if category:
        return [Record(post, "classified", category, post.author.handle,
                       f"the post carries #{category}"), *_boost_if_public(post)]
    boost = _boost_if_public(post) if config.policy.boost == "detected" else []
    why_not = _why_no_prompt(post, ctx, config)
    if why_not:
        return [Record(post, "seen", reason=why_not), *boost]
    return [Record(post, "prompted", reason="asking the author for a category"),
            Prompt(post, _reply_visibility(post.visibility)), *boost]


# ---- bridged pairs: a Bridgy Fed copy and its original are one share ---------------------------

def _yields(twin: Item, post: Post) -> bool:
    """Does the recorded twin make way for the new post? Only a copy nobody was asked about yet
    does, for its original: the prompt then goes where the author reads it."""
    return post.bridged_from is None and twin.is_copy() and twin.same_as is None \
        and twin.state in ("seen", "waiting")


def _joins(post: Post, twin: Item, config: Config) -> list[Action]:
    """The post joins its twin's item: recorded as `bridged`, never prompted nor listed on its
    own, and boosted on its network once the pair is (a copy as `boost_bridged` says)."""
    kind = "a Bridgy Fed copy" if post.bridged_from is not None else "the original"
    record = Record(post, "bridged", twin.category, same_as=twin.uri,
                    reason=f"{kind} of {twin.uri}: prompted, classified and listed once, through it")
    boost = _pair_boosted(twin) and _may_boost(post.visibility, post.bridged_from is not None, config)
    return [record, *([Boost(post.network, post.uri, post.ref)] if boost else [])]


def _takes_over(post: Post, twin: Item, actions: list[Action], config: Config) -> list[Action]:
    """The original came while its copy waited: the original is asked, the copy's prompt is
    forgotten and the copy goes by the original."""
    record = next((a for a in actions if isinstance(a, Record)), None)
    if record is None:  # the original is not kept (replies = "ignore"): the copy stays as it is
        return []
    out: list[Action] = [DropPrompt(twin.network, twin.uri)] if twin.state == "waiting" else []
    out.append(Link(twin.network, twin.uri, post.uri, record.category,
                    f"a Bridgy Fed copy of {post.uri}, which came after it"))
    classified = record.state == "classified" and not post.replies_to_someone_else()
    if classified and not twin.boosted and post.visibility == "public" \
            and _may_boost(twin.visibility, True, config):
        out.append(Boost(twin.network, twin.uri, twin.ref))
    return out


def _held(post: Post, actions: list[Action], config: Config) -> list[Action]:
    """A copy seen before its original: its prompt waits `bridged_wait_seconds`, so that the
    original, if it comes, is asked instead (BridgeWaitOver releases it)."""
    if not any(isinstance(a, Prompt) for a in actions):
        return actions
    wait = f"a Bridgy Fed copy: waiting {config.policy.bridged_wait_seconds:g} s for its original"
    return [replace(a, state="waiting", reason=wait) if isinstance(a, Record)
            else replace(a, held=True) if isinstance(a, Prompt) else a for a in actions]


def _wait_over(event: BridgeWaitOver, ctx: Context) -> list[Action]:
    item = ctx.item
    if item is None or item.state != "waiting":
        return [Ignore(event.network, event.uri, "no copy waiting for its original")]
    if ctx.author.opted_out or ctx.author.blocked:
        return [DropPrompt(item.network, item.uri),
                SetState(item.network, item.uri, "seen", "the author opted out or was blocked "
                         "while the copy waited")]
    return [ReleasePrompt(item.network, item.uri)]


def _pair_boosted(item: Item) -> bool:
    """Is (or will) the twin a post joins be boosted? Anyone can write `bridgyOriginalUrl`: a post
    that only claims to be a copy joins the item it names (never asked, never listed) and is
    boosted as that item is, public and classified; no more than answering its own prompt gets."""
    return item.boosted or (item.state == "classified" and item.visibility == "public"
                            and not item.reply_to_other)


def _may_boost(visibility: Visibility, copy: bool, config: Config) -> bool:
    return visibility == "public" and (config.policy.boost_bridged or not copy)


def _twin_classified(twin: Item | None, primary: Item, category: str, config: Config) -> list[Action]:
    """The twin of a classified item takes its category, and is boosted on its network."""
    if twin is None or twin.same_as != primary.uri:
        return []
    out: list[Action] = [Link(twin.network, twin.uri, primary.uri, category, "its twin was classified")]
    comment = primary.reply_to_other and config.policy.replies != "curate"
    if not twin.boosted and not comment and primary.visibility == "public" \
            and _may_boost(twin.visibility, twin.is_copy(), config):
        out.append(Boost(twin.network, twin.uri, twin.ref))
    return out


def _post_imported(post: Post, ctx: Context, config: Config) -> list[Action]:
    """An old post is recorded and classified as a live one would be, consent included, but an
    old post getting a question out of nowhere, or a wave of old boosts in followers' timelines,
    happens only under `import_prompt` / `import_boost`."""
    if post.author.id in ctx.bot_ids or _bridged_from_the_bot(post, ctx.bot_ids) \
            or not post.has_tag(config.hashtag):
        return [Ignore(post.network, post.uri, "the bot's own post, or not tagged")]
    if _erased(post, ctx):
        return [Unseen(post.network, post.uri)]
    policy = config.policy
    asked = config if policy.import_prompt else replace(config, policy=replace(policy, prompt="never"))
    actions = _tagged(post, ctx, asked)
    if not policy.import_boost:
        actions = [a for a in actions if not isinstance(a, Boost)]
    if policy.import_prompt:
        return actions
    return [replace(a, reason="imported from the history: never prompted (import_prompt = false)")
            if isinstance(a, Record) and a.state == "seen" and a.reason == NEVER else a
            for a in actions]


def _reply_to_someone_else(post: Post, config: Config) -> list[Action]:
    """A tagged reply to another person's post is a comment more often than a share: with
    `replies = "record"` it is kept (listed in digests only when it carries a link), never
    prompted nor boosted; with "ignore" it is not kept at all."""
    if config.policy.replies == "ignore":
        return [Ignore(post.network, post.uri, "a reply to someone else's post (replies = ignore)")]
    category = category_from_tags(post.tags, post.text, config.categories)
    state, why = _reply_state(post, category)
    return [Record(post, state, category, post.author.handle if category else None, why)]


def _reply_state(post: Post, category: str | None) -> tuple[ItemState, str]:
    """A recorded reply's state: listed (seen, or classified) with a link, else skipped."""
    if not post.link:
        return "skipped", "a reply to someone else's post without a link: kept, not listed"
    state: ItemState = "classified" if category else "seen"
    return state, "a reply to someone else's post: never prompted nor boosted"


def _why_no_prompt(post: Post, ctx: Context, config: Config) -> str:
    """Empty when the author may be prompted, else the reason not to."""
    policy = config.policy
    if ctx.author.opted_out:
        return "the author opted out of prompts"
    if post.author.is_bot() and policy.bots != "prompt":
        return "a bot account: never prompted (policy.bots)"
    if policy.prompt == "never":
        return NEVER
    if policy.prompt == "followers" and not (post.author.follows_bot or post.mentions_bot):
        return "the author neither follows nor mentions the bot"
    if ctx.author.prompts_today >= policy.max_prompts_per_author_per_day:
        return "daily prompt limit for this author reached"
    return ""


def _answer(post: Post, item: Item, ctx: Context, config: Config) -> list[Action]:
    moderator = post.author.handle.casefold() in config.policy.moderators
    if post.author.id != item.author_id and not moderator:
        return [Ignore(post.network, post.uri, "an answer from someone other than the author")]
    if item.state in CLOSED:
        return [Ignore(post.network, post.uri, f"the item is {item.state}")]
    answer = parse_answer(post.text, config.categories)
    reply_vis = _reply_visibility(post.visibility)
    if answer.kind == "category" and answer.category:
        who = "moderator" if post.author.id != item.author_id else "author"
        actions: list[Action] = [Classify(item.network, item.uri, answer.category,
                                          post.author.handle, f"the {who} answered")]
        if config.policy.acknowledge == "favourite":
            actions.append(Acknowledge(post))
        elif config.policy.acknowledge == "reply":
            actions.append(Reply(post, "thanks", answer.category, reply_vis))
        if not item.boosted and item.visibility == "public":
            actions.append(Boost(item.network, item.uri, item.ref))
        return [*actions, *_twin_classified(ctx.twin, item, answer.category, config)]
    if answer.kind == "optout":
        if ctx.author.opted_out:  # "stop" five times is one confirmation, not five
            return [Ignore(post.network, post.uri, "already opted out; staying quiet")]
        return [OptOut(post.network, post.author.id, post.author.handle),
                Reply(post, "opt_out", visibility=reply_vis)]
    key: Literal["help", "not_understood"] = "help" if answer.kind == "help" else "not_understood"
    if (item.help_replies if key == "help" else item.unknown_replies) == 0:
        return [NoteReply(item.network, item.uri, key), Reply(post, key, visibility=reply_vis)]
    return [Ignore(post.network, post.uri, f"{key.replace('_', ' ')} already replied for this item; "
                                           "staying quiet")]


def _post_edited(post: Post, ctx: Context, config: Config) -> list[Action]:
    item = ctx.item
    if item is None:  # an edit that adds the hashtag: a new item
        return _post_seen(post, ctx, config)
    if not post.has_tag(config.hashtag):
        return _withdraw(ctx, "withdrawn", "an edit removed the hashtag", post.uri, post.network)
    if item.state == "withdrawn":
        return _retagged(post, item, config)
    if post.replies_to_someone_else() and config.policy.replies == "record" \
            and item.state in ("seen", "skipped", "classified"):
        state, why = _reply_state(post, item.category)
        return [Record(post, state, item.category, reason=f"edited: {why}")]
    return [Record(post, item.state, item.category, reason="the author edited the post")]


def _retagged(post: Post, item: Item, config: Config) -> list[Action]:
    """An edit put the hashtag back on a withdrawn item: it counts again as it stood (classified
    and boosted again, or seen), without a second prompt."""
    if item.category is None:
        return [Record(post, "seen", reason="an edit put the hashtag back")]
    comment = item.reply_to_other and config.policy.replies != "curate"
    return [Record(post, "classified", item.category, reason="an edit put the hashtag back"),
            *([] if comment else _boost_if_public(post))]


def _withdraw(ctx: Context, state: ItemState, why: str, uri: str, network: Network) -> list[Action]:
    """The item leaves the veille and is unboosted; so does its bridged twin that goes by it
    (the same share: Bridgy Fed deletes the copy too)."""
    item, twin = ctx.item, ctx.twin
    if item is None or item.state in CLOSED:
        return [Ignore(network, uri, "not a tracked item")]
    actions: list[Action] = [SetState(item.network, item.uri, state, why)]
    if item.boosted:
        actions.append(Unboost(item.network, item.uri, item.ref))
    if twin is not None and twin.same_as == item.uri and twin.state not in CLOSED:
        actions.append(SetState(twin.network, twin.uri, "withdrawn", f"its bridged twin: {why}"))
        if twin.boosted:
            actions.append(Unboost(twin.network, twin.uri, twin.ref))
    return actions


def _timed_out(event: PromptTimedOut, ctx: Context) -> list[Action]:
    if ctx.item is None or ctx.item.state != "prompted":
        return [Ignore(event.network, event.uri, "no prompt waiting")]
    return [SetState(event.network, event.uri, "expired", "no answer before the timeout")]


def _restore(event: ModeratorRestore, ctx: Context, config: Config) -> list[Action]:
    """Back to what it was before the withdrawal: classified (and boosted) when it had a
    category, else waiting in the desk's queue; its bridged twin goes by it again."""
    item, twin = ctx.item, ctx.twin
    if item is None or item.state != "withdrawn":
        return [Ignore(event.network, event.uri, "only a withdrawn item can be restored")]
    if item.boosted:  # withdrawn and still boosted: the withdrawal's unboost is under way
        return [Ignore(event.network, event.uri, "its unboost is still under way; restore it once done")]
    why = f"a moderator ({event.by}) restored it"
    if item.same_as is not None:  # half of a bridged pair: it goes by its twin again
        return [Link(item.network, item.uri, item.same_as, item.category, why)]
    if twin is not None and (twin.same_as != item.uri or twin.state != "withdrawn"):
        twin = None
    if not item.category:
        back = [Link(twin.network, twin.uri, item.uri, None, why)] if twin else []
        return [SetState(item.network, item.uri, "seen", why), *back]
    actions: list[Action] = [SetState(item.network, item.uri, "classified", why)]
    if not item.boosted and item.visibility == "public":
        actions.append(Boost(item.network, item.uri, item.ref))
    return [*actions, *_twin_classified(twin, item, item.category, config)]


def _block(event: ModeratorBlock, ctx: Context) -> list[Action]:
    """A blocked author is never prompted nor listed, and the bot stops boosting them (an
    unblock lists them again, without boosting again: a moderator restores what deserves it)."""
    if ctx.author.blocked == event.blocked:
        return [Ignore(event.network, "", "the author is already " +
                       ("blocked" if event.blocked else "not blocked"))]
    actions: list[Action] = [SetBlocked(event.network, event.author_id, event.handle, event.blocked,
                                        event.by)]
    if event.blocked:
        actions += [Unboost(i.network, i.uri, i.ref) for i in ctx.boosted_items]
    return actions


def _moderator_decision(event: ModeratorDecision, ctx: Context, config: Config) -> list[Action]:
    item, twin = ctx.item, ctx.twin
    if item is not None and item.state == "bridged" and twin is not None:
        item, twin = twin, item  # a decision on one half of a pair is the pair's decision
    if item is None:
        return [Ignore(event.network, event.uri, "not a tracked item")]
    if config.category(event.category) is None:
        return [Ignore(event.network, event.uri, f"unknown category {event.category!r}")]
    actions: list[Action] = [Classify(item.network, item.uri, event.category, event.by,
                                      "a moderator decided")]
    comment = item.reply_to_other and config.policy.replies != "curate"
    if not item.boosted and item.visibility == "public" and item.state not in CLOSED and not comment:
        actions.append(Boost(item.network, item.uri, item.ref))
    return actions + (_twin_classified(twin, item, event.category, config)
                      if item.state not in CLOSED else [])


def _boost_if_public(post: Post) -> list[Action]:
    return [Boost(post.network, post.uri, post.ref)] if post.visibility == "public" else []


def _reply_visibility(original: Visibility) -> Visibility:
    """Never more public than the original: public/unlisted get unlisted, the rest direct."""
    return "unlisted" if original in ("public", "unlisted") else "direct"
