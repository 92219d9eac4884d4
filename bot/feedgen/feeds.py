"""The feeds the bot serves: one for every classified post ("all") and one per category, named and
described from the texts (or `[bluesky.feeds] names` / `descriptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import FEED_NAME_GRAPHEMES, Config, graphemes

GENERATOR = "app.bsky.feed.generator"
GET_SKELETON = "app.bsky.feed.getFeedSkeleton"
ALL = "all"


@dataclass(frozen=True)
class Feed:
    key: str  # the record key: "all" or a category key
    category: str | None  # None: every category
    name: str
    description: str


def feeds(config: Config) -> list[Feed]:
    """Every feed of the configuration, "all" first, then the categories in their order."""
    f = config.bluesky.feeds
    titles = [c.title(config.language) for c in config.categories]
    name = lambda key, title: f.names.get(key) or fit_name(config.text("feed_name", category=title))
    out = [Feed(ALL, None, name(ALL, config.text("feed_all")), f.descriptions.get(ALL)
                or config.text("feed_all_description", categories=", ".join(titles)))]
    for c, title in zip(config.categories, titles, strict=True):
        out.append(Feed(c.key, c.key, name(c.key, title),
                        f.descriptions.get(c.key) or config.text("feed_description", category=title)))
    return out


def fit_name(name: str) -> str:
    """A default name within Bluesky's 24 graphemes: "numpolville · Prospective" (25) becomes
    "numpolville·Prospective"; anything longer is cut with an ellipsis."""
    if graphemes(name) <= FEED_NAME_GRAPHEMES:
        return name
    name = name.replace(" · ", "·")
    if graphemes(name) <= FEED_NAME_GRAPHEMES:
        return name
    import regex

    return "".join(regex.findall(r"\X", name)[:FEED_NAME_GRAPHEMES - 1]).rstrip() + "…"


def feed_uri(did: str, key: str) -> str:
    return f"at://{did}/{GENERATOR}/{key}"


def feed_link(actor: str, key: str) -> str:
    """The feed's page in the Bluesky app (`actor`: the publisher's handle or DID)."""
    return f"https://bsky.app/profile/{actor}/feed/{key}"
