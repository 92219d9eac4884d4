"""A post record (a plain dict, as decoded from the firehose, Jetstream or the AppView) becomes the
network-neutral `bot.model.Post` the curation core understands."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bot.bluesky.detect import LINK_FACET, POST, features, mentions, record_tags, reply_parent
from bot.bridges import bluesky_original
from bot.links import TEXT_URL, TRAILING, web_link
from bot.model import Author, Post

EXTERNAL_EMBED = "app.bsky.embed.external"
RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"


def post_uri(did: str, rkey: str, collection: str = POST) -> str:
    return f"at://{did}/{collection}/{rkey}"


def split_uri(uri: str) -> tuple[str, str, str]:
    """at://did/collection/rkey -> (did, collection, rkey)."""
    did, collection, rkey = uri.removeprefix("at://").split("/", 2)
    return did, collection, rkey


def to_post(record: dict[str, Any], did: str, rkey: str, cid: str, *, bot_did: str,
            author: Author | None = None, tags: frozenset[str] | None = None) -> Post:
    """The Post for a record; `author` is the enriched one (AppView), else a bare DID; `tags`
    if the caller has them already (`record_tags`)."""
    uri = post_uri(did, rkey)
    link, title = _link(record)
    text = record.get("text")
    parent = reply_parent(record)
    author = author or Author("bluesky", did, did)
    return Post(
        network="bluesky",
        uri=uri,
        ref=f"{uri} {cid}",
        url=f"https://bsky.app/profile/{did}/post/{rkey}",
        author=author,
        text=text if isinstance(text, str) else "",
        created_at=_created_at(record.get("createdAt")),
        visibility="public",
        tags=record_tags(record) if tags is None else tags,
        link=link,
        link_title=title,
        reply_to=parent,
        mentions_bot=mentions(record, bot_did),
        reply_to_author=_repo(parent) if parent else None,
        bridged_from=bluesky_original(record, author.handle, author.labels),
    )


def _repo(uri: str) -> str:
    """The DID in an at:// URI ("" if it is not one): whose record it names."""
    did = uri.removeprefix("at://").split("/", 1)[0] if uri.startswith("at://") else ""
    return did if did.startswith("did:") else ""


def _link(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """The shared link: an external embed (with its title, also as a recordWithMedia's media),
    else the first link facet, else the first URL in the text (a client that makes no facet).
    Only http(s): a `javascript:` or `data:` target is never taken."""
    embed = record.get("embed")
    if isinstance(embed, dict) and embed.get("$type") == RECORD_WITH_MEDIA:
        embed = embed.get("media")
    if isinstance(embed, dict) and embed.get("$type") == EXTERNAL_EMBED:
        external = embed.get("external")
        uri = external.get("uri") if isinstance(external, dict) else None
        if web_link(uri):
            title = external.get("title")  # type: ignore[union-attr]
            return uri, title if isinstance(title, str) and title else None
    for feature in features(record):
        if feature.get("$type") == LINK_FACET and web_link(feature.get("uri")):
            return feature["uri"], None
    text = record.get("text")
    found = TEXT_URL.search(text) if isinstance(text, str) else None
    return (found.group(0).rstrip(TRAILING), None) if found else (None, None)


def _created_at(value: Any) -> datetime:
    """createdAt is written by the client: a bad or naive value falls back to now / UTC."""
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
