"""Bridgy Fed's copies, recognised: the same share bridged from one network to the other is one
item, so it is prompted, classified, counted and listed once.

Bridgy Fed marks what it writes (its source: snarfed/bridgy-fed, `atproto.py` and `ids.py`):
- on Bluesky, a copy of a fediverse post carries `bridgyOriginalUrl` (the original's URL, else
  its ActivityPub id); the bridged account's handle ends in `.ap.brid.gy` and its profile has the
  self-label `bridged-from-bridgy-fed-activitypub`;
- on Mastodon, a copy of a Bluesky post has the ActivityPub id
  `https://bsky.brid.gy/convert/ap/<the original's at:// URI>`, by an account on `bsky.brid.gy`.

Pure functions; what a copy says of its original becomes `Post.bridged_from`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.links import web_link
from bot.model import Network

CONVERT_PREFIX = "https://bsky.brid.gy/convert/ap/"
BSKY_BRIDGE = "bsky.brid.gy"  # the domain of Bluesky accounts on the fediverse
AP_BRIDGE_HANDLES = ".ap.brid.gy"  # the handles of fediverse accounts on Bluesky
BRIDGED_LABEL = "bridged-from-bridgy-fed-activitypub"


def other(network: Network) -> Network:
    """Bridgy Fed bridges between the two networks: a copy's original is on the other one."""
    return "bluesky" if network == "mastodon" else "mastodon"


def mastodon_original(status: Mapping[str, Any]) -> str | None:
    """The at:// URI of the Bluesky post a status copies; "" for a status by a bridged account
    that names no original; None for a status that is no copy."""
    uri = str(status.get("uri") or "")
    if uri.startswith(CONVERT_PREFIX + "at://"):
        return uri[len(CONVERT_PREFIX):].split("#", 1)[0]
    account = status.get("account") or {}
    acct = str(account.get("acct") or "") if isinstance(account, Mapping) else ""
    return "" if acct.casefold().endswith("@" + BSKY_BRIDGE) else None


def bluesky_original(record: Mapping[str, Any], handle: str, labels: tuple[str, ...]) -> str | None:
    """The URL (or ActivityPub id) of the fediverse post a record copies; "" for a post by a
    bridged account that names no original; None for a post that is no copy. Only an http(s)
    value is taken: anything else in the field is no original to look for."""
    original = record.get("bridgyOriginalUrl")
    if isinstance(original, str) and web_link(original):
        return original
    bridged = handle.casefold().endswith(AP_BRIDGE_HANDLES) or BRIDGED_LABEL in labels
    return "" if bridged or isinstance(original, str) else None


def original_authors(network: Network, handle: str) -> tuple[str, ...]:
    """The handles the original's author may have on the other network, from the handle of a
    copy's author on `network`: alice.home.test.ap.brid.gy is alice@home.test (or alice, an
    account of the bot's own server); bob.test@bsky.brid.gy is bob.test. () for no bridge account."""
    h = handle.casefold()
    if network == "bluesky":
        if not h.endswith(AP_BRIDGE_HANDLES):
            return ()
        user, _, domain = h.removesuffix(AP_BRIDGE_HANDLES).partition(".")
        return (f"{user}@{domain}", user)
    user, _, domain = h.rpartition("@")
    return (user,) if domain == BSKY_BRIDGE and user else ()


def bridged_author(network: Network, handle: str) -> str:
    """A LIKE pattern for the handle that an author on `network` has on the other one through
    the bridge (the reverse of `original_authors`; a local Mastodon account's domain is any)."""
    if network == "mastodon":
        user, _, domain = handle.partition("@")
        return f"{user}.{domain or '%'}{AP_BRIDGE_HANDLES}"
    return f"{handle}@{BSKY_BRIDGE}"
