"""`numpolville feeds publish | unpublish | list`: the `app.bsky.feed.generator` records in the
bot's repository (record keys "all" and the category keys), pointing at the feed service's DID.

Idempotent: a record whose content (DID, name, description, avatar) has not changed is left as
it is, so republishing after a restart writes nothing; a changed one is replaced with
`swapRecord`, so a concurrent edit is not overwritten silently. The published URIs are remembered
in the store: the feed service answers for those feeds only.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from atproto import Client
from atproto_client.exceptions import BadRequestError
from atproto_client.models.utils import get_model_as_dict

from bot.config import Config
from bot.feedgen.feeds import GENERATOR, feed_uri, feeds
from bot.store import Store

Outcome = Literal["created", "updated", "unchanged", "removed", "absent"]
COMPARED = ("did", "displayName", "description", "avatar")


@dataclass(frozen=True)
class Published:
    key: str
    uri: str
    outcome: Outcome


def publish(client: Client, did: str, config: Config, store: Store) -> list[Published]:
    """Write (or leave as they are) the generator record of every configured feed."""
    avatar = _avatar(client, config.bluesky.feeds.avatar)
    out = []
    for feed in feeds(config):
        wanted: dict[str, Any] = {"$type": GENERATOR, "did": config.bluesky.feeds.service_did,
                                  "displayName": feed.name, "description": feed.description}
        if avatar:
            wanted["avatar"] = avatar
        existing, cid = _record(client, did, feed.key)
        uri = feed_uri(did, feed.key)
        if existing is not None and _same(existing, wanted):
            outcome: Outcome = "unchanged"
        else:
            wanted["createdAt"] = (existing or {}).get("createdAt") or _now()
            data = {"repo": did, "collection": GENERATOR, "rkey": feed.key, "record": wanted}
            cid = client.com.atproto.repo.put_record(data | ({"swapRecord": cid} if cid else {})).cid
            outcome = "updated" if existing is not None else "created"
        store.feed_generator_published(feed.key, uri, cid)
        out.append(Published(feed.key, uri, outcome))
    return out


def unpublish(client: Client, did: str, config: Config, store: Store) -> list[Published]:
    """Delete the generator records of the configured feeds and of any other feed published."""
    keys = dict.fromkeys([*(f.key for f in feeds(config)), *store.feed_generators()])
    out = []
    for key in keys:
        existing, _ = _record(client, did, key)
        if existing is not None:
            client.com.atproto.repo.delete_record({"repo": did, "collection": GENERATOR, "rkey": key})
        store.feed_generator_removed(key)
        out.append(Published(key, feed_uri(did, key), "removed" if existing is not None else "absent"))
    return out


def _record(client: Client, did: str, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """The record now in the repository (JSON form) and its CID, or (None, None)."""
    try:
        got = client.com.atproto.repo.get_record({"repo": did, "collection": GENERATOR, "rkey": key})
    except BadRequestError as e:  # RecordNotFound
        if getattr(e.response, "status_code", None) == 400:
            return None, None
        raise
    value = got.value if isinstance(got.value, dict) else get_model_as_dict(got.value)
    return value, got.cid


def _same(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    link = lambda blob: (blob or {}).get("ref", {}).get("$link") if isinstance(blob, dict) else None
    return all((link(existing.get(k)) == link(wanted.get(k))) if k == "avatar"
               else existing.get(k) == wanted.get(k) for k in COMPARED)


def _avatar(client: Client, path: str) -> dict[str, Any] | None:
    """The uploaded avatar's blob (the PDS stores one blob per content, so re-uploading the same
    image gives the same reference and leaves the records unchanged)."""
    if not path:
        return None
    data = Path(path).read_bytes()
    blob = client.upload_blob(data).blob
    mime = mimetypes.guess_type(path)[0] or "image/png"
    return {"$type": "blob", "ref": {"$link": str(blob.cid)}, "mimeType": blob.mime_type or mime,
            "size": blob.size}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
