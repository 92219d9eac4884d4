"""The `bot` self-label on the bot's profile: how a Bluesky account says it is automated (the app
shows it as "automated"), as the bot flag does on Mastodon.

The profile record also holds what a person set in the app (name, bio, avatar, other labels), so
it is read, the label added and written back only if the record is still the one read
(compare-and-swap): an edit made in the app at the same moment is read again and kept, never
overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atproto import Client
from atproto_client.exceptions import BadRequestError
from atproto_client.models.utils import get_model_as_dict

PROFILE = "app.bsky.actor.profile"
SELF_LABELS = "com.atproto.label.defs#selfLabels"
BOT = "bot"
ATTEMPTS = 3

Write = Callable[[str, Any, dict[str, Any]], Any]  # BlueskyAdapter._write: the budget, then the call


class ProfileBusy(Exception):
    """The profile kept changing between our read and our write."""


def read_profile(client: Client, did: str) -> tuple[dict[str, Any] | None, str | None]:
    """The profile record and its CID; (None, None) for an account that never saved a profile."""
    try:
        res = client.com.atproto.repo.get_record({"repo": did, "collection": PROFILE, "rkey": "self"})
    except BadRequestError as e:
        if _error(e) == "RecordNotFound":
            return None, None
        raise
    return get_model_as_dict(res.value), res.cid


def self_labels(record: dict[str, Any] | None) -> list[str]:
    return [label.get("val", "") for label in ((record or {}).get("labels") or {}).get("values", [])]


def with_bot_label(record: dict[str, Any] | None) -> dict[str, Any]:
    """The record with `bot` added to its self-labels, everything else as it was."""
    labeled = dict(record or {"$type": PROFILE})
    values = list((labeled.get("labels") or {}).get("values", []))
    labeled["labels"] = {"$type": SELF_LABELS, "values": [*values, {"val": BOT}]}
    return labeled


def ensure_bot_label(client: Client, did: str, write: Write) -> str | None:
    """Add the `bot` label if it is missing and say how it was done; None when it was already
    there. A record that changes under us is read again, ATTEMPTS times."""
    for _ in range(ATTEMPTS):
        record, cid = read_profile(client, did)
        if BOT in self_labels(record):
            return None
        # A missing record has no CID to swap on: the repository's head commit guards the create.
        swap = ({"swap_record": cid} if cid else
                {"swap_commit": client.com.atproto.sync.get_latest_commit({"did": did}).cid})
        try:
            write("update", client.com.atproto.repo.put_record,
                  {"repo": did, "collection": PROFILE, "rkey": "self",
                   "record": with_bot_label(record), **swap})
        except BadRequestError as e:
            if _error(e) != "InvalidSwap":
                raise
            continue
        return "added to the profile" if record else "set on a new profile record"
    raise ProfileBusy(f"the profile changed during each of {ATTEMPTS} attempts")


def _error(e: BadRequestError) -> str:
    """The XRPC error name ("RecordNotFound", "InvalidSwap") of a 400 answer."""
    return getattr(getattr(e.response, "content", None), "error", "") or ""
