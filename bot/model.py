"""The values the curation core works on: posts and authors as the adapters see them, items as the
store remembers them, and the events and actions that flow between adapters, core and store.

Everything here is plain immutable data, the same for Mastodon and Bluesky.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, Union

Network = Literal["mastodon", "bluesky"]
Visibility = Literal["public", "unlisted", "private", "direct"]
OPT_OUT_BIO_TAGS = ("#nobot", "#noindex", "#noai")


@dataclass(frozen=True)
class Author:
    network: Network
    id: str  # Mastodon account id on the home server, Bluesky DID
    handle: str  # acct (user@server) or Bluesky handle
    bio: str = ""
    follows_bot: bool | None = None  # None: not checked (the adapter checks only when it matters)
    labels: tuple[str, ...] = ()  # Bluesky self-labels, e.g. "!no-unauthenticated"
    bot: bool = False  # Mastodon's `bot` flag (on Bluesky, the self-label "bot")

    def refuses_bots(self) -> bool:
        """#nobot, #noindex or #noai anywhere in the bio, in any case."""
        bio = self.bio.casefold()
        return any(tag in bio for tag in OPT_OUT_BIO_TAGS)

    def is_bot(self) -> bool:
        """An automated account, as it says itself: it cannot answer, and two bots can loop."""
        return self.bot or "bot" in self.labels


@dataclass(frozen=True)
class Post:
    """A post as an adapter saw it. `uri` is the identity across servers; `ref` is what the
    adapter needs to act on it (a local status id, or a Bluesky strong ref "uri cid")."""

    network: Network
    uri: str
    ref: str
    url: str
    author: Author
    text: str
    created_at: datetime
    visibility: Visibility = "public"
    tags: frozenset[str] = frozenset()  # lower-case, without "#"
    link: str | None = None
    link_title: str | None = None
    reply_to: str | None = None  # uri of the parent post
    mentions_bot: bool = False
    # Whose post this one replies to (Mastodon account id, Bluesky DID); "" when the parent's
    # author is unknown, None when the post is no reply.
    reply_to_author: str | None = None
    # A Bridgy Fed copy (bot/bridges.py): the original's at:// URI, URL or ActivityPub id; "" when
    # the copy names none; None for a post that is no copy.
    bridged_from: str | None = None

    def has_tag(self, tag: str) -> bool:
        return tag.casefold() in self.tags

    def replies_to_someone_else(self) -> bool:
        """A reply to another person's post (a comment), not a post in the author's own thread."""
        return self.reply_to_author is not None and self.reply_to_author != self.author.id


# "waiting": a bridged copy holding its prompt a while for its original; "bridged": one of a
# bridged pair, listed, prompted and classified through the other (`Item.same_as`).
ItemState = Literal["seen", "prompted", "classified", "expired", "withdrawn", "deleted", "skipped",
                    "waiting", "bridged"]


@dataclass(frozen=True)
class Item:
    """What the store knows about one tagged post."""

    network: Network
    uri: str
    ref: str
    author_id: str
    author_handle: str
    state: ItemState
    visibility: Visibility = "public"
    category: str | None = None
    prompt_uri: str | None = None
    boosted: bool = False
    unknown_replies: int = 0
    help_replies: int = 0
    reply_to_other: bool = False  # a reply to someone else's post (see `[policy] replies`)
    bridged_from: str | None = None  # a Bridgy Fed copy: what it names of its original
    same_as: str | None = None  # the uri of its bridged twin (on the other network) it goes by

    def is_copy(self) -> bool:
        return self.bridged_from is not None


@dataclass(frozen=True)
class AuthorState:
    """What the store knows about an author, beyond what the post carries."""

    opted_out: bool = False
    prompts_today: int = 0
    erased_at: datetime | None = None  # when `forget` erased her, if it did
    blocked: bool = False  # a moderator blocked the author: never prompted, never listed


# ---- events: what happened, as the adapters report it -------------------------------------------

@dataclass(frozen=True)
class PostSeen:
    post: Post


@dataclass(frozen=True)
class PostEdited:
    post: Post


@dataclass(frozen=True)
class PostImported:
    """A post from before the bot started, found by `numpolville import`."""

    post: Post


@dataclass(frozen=True)
class PostDeleted:
    network: Network
    uri: str


@dataclass(frozen=True)
class PromptTimedOut:
    network: Network
    uri: str


@dataclass(frozen=True)
class BridgeWaitOver:
    """A bridged copy has waited `[policy] bridged_wait_seconds` for its original."""

    network: Network
    uri: str


@dataclass(frozen=True)
class ModeratorDecision:
    network: Network
    uri: str
    category: str
    by: str


@dataclass(frozen=True)
class ModeratorWithdrawal:
    """A moderator takes an item off the veille (the web desk): unboosted, never listed."""

    network: Network
    uri: str
    by: str


@dataclass(frozen=True)
class ModeratorRestore:
    """A moderator puts a withdrawn item back (the web desk)."""

    network: Network
    uri: str
    by: str


@dataclass(frozen=True)
class ModeratorBlock:
    """A moderator blocks (`blocked`) or unblocks an author (the web desk)."""

    network: Network
    author_id: str
    handle: str
    by: str
    blocked: bool = True


# The decisions a moderator takes by name (on the web desk or with `numpolville classify`): each
# is also written to the event log as a decision, the desk's history.
DECISIONS = (ModeratorDecision, ModeratorWithdrawal, ModeratorRestore, ModeratorBlock)
Event = Union[PostSeen, PostEdited, PostImported, PostDeleted, PromptTimedOut, BridgeWaitOver,
              ModeratorDecision, ModeratorWithdrawal, ModeratorRestore, ModeratorBlock]


@dataclass(frozen=True)
class Context:
    """What the core needs from the store to decide: the item the event is about, the item whose
    prompt a reply answers, and the author's standing. Loaded by the shell, never by the core."""

    item: Item | None = None
    prompted_item: Item | None = None
    author: AuthorState = field(default_factory=AuthorState)
    bot_ids: frozenset[str] = frozenset()
    boosted_items: tuple[Item, ...] = ()  # the author's items the bot boosts (for a block)
    # The other half of a bridged pair (bot/bridges.py): of the event's post or item, or, for an
    # answer, of the prompted item.
    twin: Item | None = None


# ---- actions: what to do, as the core decides -----------------------------------------------------

@dataclass(frozen=True)
class Record:
    """Store the post as an item in `state` (new or updated)."""

    post: Post
    state: ItemState
    category: str | None = None
    classified_by: str | None = None
    reason: str = ""
    same_as: str | None = None  # the twin it goes by (state "bridged")


@dataclass(frozen=True)
class Classify:
    network: Network
    uri: str
    category: str
    by: str
    reason: str = ""


@dataclass(frozen=True)
class Prompt:
    """Reply to the post, asking for its category; a `held` prompt is written down but only
    carried out once released (a bridged copy waiting for its original)."""

    post: Post
    visibility: Visibility
    held: bool = False


@dataclass(frozen=True)
class ReleasePrompt:
    """Carry out the held prompt of a copy whose original did not come."""

    network: Network
    uri: str


@dataclass(frozen=True)
class DropPrompt:
    """Forget the held prompt of a copy: its original came, and is asked instead."""

    network: Network
    uri: str


@dataclass(frozen=True)
class Link:
    """Make an item one half of a bridged pair: `bridged`, going by its twin `same_as` (and its
    category)."""

    network: Network
    uri: str
    same_as: str
    category: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Boost:
    network: Network
    uri: str
    ref: str


@dataclass(frozen=True)
class Unboost:
    network: Network
    uri: str
    ref: str


@dataclass(frozen=True)
class Acknowledge:
    """Favourite (Mastodon) or like (Bluesky) a person's answer."""

    post: Post


@dataclass(frozen=True)
class Reply:
    """Reply to a person with one of the configured texts."""

    post: Post
    text_key: str
    category: str | None = None
    visibility: Visibility = "unlisted"


@dataclass(frozen=True)
class SetState:
    network: Network
    uri: str
    state: ItemState
    reason: str


@dataclass(frozen=True)
class OptOut:
    network: Network
    author_id: str
    handle: str


@dataclass(frozen=True)
class SetBlocked:
    """A moderator's block (or unblock) of an author."""

    network: Network
    author_id: str
    handle: str
    blocked: bool
    by: str


@dataclass(frozen=True)
class NoteReply:
    """A "help" or "not understood" reply given for an item: counted, so each is given once."""

    network: Network
    uri: str
    text_key: Literal["help", "not_understood"]


@dataclass(frozen=True)
class Unseen:
    """A post by an erased author, written before her erasure (seen again on the network):
    nothing of it is stored, not even that it was seen."""

    network: Network
    uri: str


@dataclass(frozen=True)
class Ignore:
    network: Network
    uri: str
    reason: str


Action = Union[Record, Classify, Prompt, ReleasePrompt, DropPrompt, Link, Boost, Unboost,
               Acknowledge, Reply, SetState, OptOut, SetBlocked, NoteReply, Unseen, Ignore]
# Actions that touch a network (the rest only touch the store).
EFFECTS = (Prompt, Boost, Unboost, Acknowledge, Reply)


# ---- serialisation of actions, so a pending intent survives a restart ----------------------------

_ACTIONS = {cls.__name__: cls for cls in Action.__args__}  # type: ignore[attr-defined]


def to_dict(action: Action) -> dict[str, Any]:
    """A JSON-ready dict of an action (posts and authors included)."""
    return {"type": type(action).__name__, **{f.name: _plain(getattr(action, f.name))
                                               for f in fields(action)}}


def from_dict(data: dict[str, Any]) -> Action:
    data = dict(data)
    cls = _ACTIONS[data.pop("type")]
    if "post" in data:
        data["post"] = post_from_dict(data["post"])
    return cls(**data)


def post_from_dict(d: dict[str, Any]) -> Post:
    d = dict(d)
    d["author"] = Author(**{**d["author"], "labels": tuple(d["author"]["labels"])})
    d["created_at"] = datetime.fromisoformat(d["created_at"])
    d["tags"] = frozenset(d["tags"])
    return Post(**d)


def _plain(value: Any) -> Any:
    if isinstance(value, (Post, Author)):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (frozenset, tuple)):
        return sorted(value) if isinstance(value, frozenset) else list(value)
    return value
