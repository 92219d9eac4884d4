"""What the bot writes, shaped by Bluesky's rules: deterministic record keys (so a retried effect
finds its first attempt instead of writing twice), mention facets with UTF-8 byte offsets, and
texts cut to 300 graphemes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import regex

B32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable, the TID alphabet
MIN_MICROS = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
MAX_MICROS = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
MAX_GRAPHEMES = 300
_URL = regex.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")
SPREAD_MICROS = 365 * 86400 * 1_000_000


def record_key(purpose: str, subject_uri: str) -> str:
    """A valid TID that only (purpose, subject) determines. Its time is the subject's own TID time
    (Bluesky posts are keyed by TIDs) with the last ~second and the clock id taken from a hash, so
    two subjects never share a key in practice and the bot's records sort near their subject.
    The subject may be any string (a digest key): then the time comes from the hash."""
    h = int.from_bytes(hashlib.sha256(f"{purpose}:{subject_uri}".encode()).digest()[:8], "big")
    micros = tid_micros(subject_uri.rsplit("/", 1)[-1])
    if micros is None:  # not a TID: a time in the bot's first year, never in the future
        micros = MIN_MICROS + (h >> 11) % SPREAD_MICROS
    micros = (min(max(micros, MIN_MICROS), MAX_MICROS) & ~0xFFFFF) | ((h >> 30) & 0xFFFFF)
    n = (micros << 10) | (h & 0x3FF)
    return "".join(B32[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def tid_micros(rkey: str) -> int | None:
    """The timestamp of a TID record key, or None if the key is not a TID."""
    if len(rkey) != 13 or rkey[0] not in B32[:16] or any(c not in B32 for c in rkey):
        return None
    n = 0
    for c in rkey:
        n = n * 32 + B32.index(c)
    return n >> 10


def strong_ref(ref: str) -> dict[str, str]:
    """"uri cid" (how a Post's ref is kept) -> com.atproto.repo.strongRef."""
    uri, _, cid = ref.partition(" ")
    return {"uri": uri, "cid": cid}


def reply_post(text: str, mention: tuple[str, str], root: dict[str, str], parent: dict[str, str],
               language: str) -> dict[str, Any]:
    """A reply that starts with "@handle " and carries the mention facet for it (byte offsets)."""
    handle, did = mention
    prefix = f"@{handle}"
    body = fit(f"{prefix} {text}")
    return {
        "$type": "app.bsky.feed.post",
        "text": body,
        "facets": [{"index": {"byteStart": 0, "byteEnd": len(prefix.encode())},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]}],
        "reply": {"root": root, "parent": parent},
        "langs": [language],
        "createdAt": now_iso(),
    }


def subject_record(collection: str, ref: str) -> dict[str, Any]:
    """A repost or a like of the post `ref`."""
    return {"$type": collection, "subject": strong_ref(ref), "createdAt": now_iso()}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters), as Bluesky counts its 300."""
    return regex.findall(r"\X", text)


def fit(text: str, limit: int = MAX_GRAPHEMES) -> str:
    clusters = graphemes(text)
    return text if len(clusters) <= limit else "".join(clusters[: limit - 1]) + "…"


def link_facets(text: str) -> list[dict[str, Any]]:
    """Link facets for the URLs of a text (Bluesky does not linkify plain text)."""
    return [{"index": {"byteStart": len(text[: m.start()].encode()),
                       "byteEnd": len(text[: m.end()].encode())},
             "features": [{"$type": "app.bsky.richtext.facet#link", "uri": m.group()}]}
            for m in _URL.finditer(text)]
