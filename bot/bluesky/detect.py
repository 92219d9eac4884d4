"""The hot path: which records, frames and Jetstream messages concern the bot.

A relay carries every commit of every account, and the bot cares about a handful. So each raw
message first meets `Prefilter.passes`, a few byte searches that may let through too much but never
too little (a property test holds it to that), and only the survivors are decoded with libipld and
judged by the exact rules below, on plain dicts.

Tag matching is case-insensitive in the Unicode sense (`str.casefold`), never a substring match:
`#numpolvillexyz` is another tag.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import libipld

POST = "app.bsky.feed.post"
FOLLOW = "app.bsky.graph.follow"
TAG_FACET = "app.bsky.richtext.facet#tag"
MENTION_FACET = "app.bsky.richtext.facet#mention"
LINK_FACET = "app.bsky.richtext.facet#link"

_HASHTAG = re.compile(r"(?<!\w)[#＃](\w+)")
_WORD = re.compile(r"\w")
CASED_LIMIT = 0x20000  # no character at or above this has a case fold other than itself
_ERROR_HEADER = b"\xa1bop\x20"  # DAG-CBOR {"op": -1}: the relay says why it closes the stream


# ---- exact rules on decoded records -----------------------------------------------------------

def record_tags(record: dict[str, Any]) -> frozenset[str]:
    """Every hashtag of a post, folded, without '#': tag facets, the `tags` field and the text."""
    tags = {t.casefold().lstrip("#") for t in record.get("tags") or () if isinstance(t, str)}
    for feature in features(record):
        if feature.get("$type") == TAG_FACET and isinstance(feature.get("tag"), str):
            tags.add(feature["tag"].casefold().lstrip("#"))
    text = record.get("text")
    if isinstance(text, str) and ("#" in text or "＃" in text):
        tags.update(_HASHTAG.findall(text.casefold()))
    return frozenset(tags)


def reply_parent(record: dict[str, Any]) -> str | None:
    reply = record.get("reply")
    parent = reply.get("parent") if isinstance(reply, dict) else None
    uri = parent.get("uri") if isinstance(parent, dict) else None
    return uri if isinstance(uri, str) else None


def mentions(record: dict[str, Any], did: str) -> bool:
    return any(f.get("$type") == MENTION_FACET and f.get("did") == did for f in features(record))


def features(record: dict[str, Any]) -> list[dict[str, Any]]:
    facets = record.get("facets")
    if not isinstance(facets, list):
        return []
    return [f for facet in facets if isinstance(facet, dict)
            for f in facet.get("features") or () if isinstance(f, dict)]


@dataclass(frozen=True)
class Hit:
    """One operation that concerns the bot, as found in a commit."""

    kind: Literal["post", "delete", "follow"]
    did: str  # the repository (author)
    rkey: str
    cid: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rules:
    """The exact rules for one tag and one bot account. `tracked` holds (did, rkey) of tagged posts,
    so that deleting one of them (and only them) becomes an event."""

    tag: str
    bot_did: str
    tracked: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tag = self.tag.casefold().lstrip("#")
        self._bot_repo = f"at://{self.bot_did}/"
        self.tracked_rkeys = {rkey.encode() for _, rkey in self.tracked}

    def track(self, did: str, rkey: str) -> None:
        self.tracked.add((did, rkey))
        self.tracked_rkeys.add(rkey.encode())

    def is_tagged(self, record: dict[str, Any]) -> bool:
        return self.tag in record_tags(record)

    def wants_post(self, record: dict[str, Any]) -> bool:
        """Tagged, an answer to one of the bot's posts, or a mention of the bot."""
        parent = reply_parent(record)
        return (self.is_tagged(record) or (parent is not None and parent.startswith(self._bot_repo))
                or mentions(record, self.bot_did))

    def judge(self, did: str, action: str, collection: str, rkey: str, cid: str | None,
              record: Any) -> Hit | None:
        """The one rule for an operation, whatever stream it came from."""
        if collection == POST:
            if action == "create" and isinstance(record, dict) and self.wants_post(record):
                return Hit("post", did, rkey, cid, record)
            if action == "delete" and (did, rkey) in self.tracked:
                return Hit("delete", did, rkey)
        elif (collection == FOLLOW and action == "create" and isinstance(record, dict)
              and record.get("subject") == self.bot_did):
            return Hit("follow", did, rkey, cid, record)
        return None

    def frame_hits(self, frame: bytes) -> list[Hit]:
        """Decode one firehose frame (`subscribeRepos`) and judge each of its operations."""
        header, body = libipld.decode_dag_cbor_multi(frame)
        if header.get("op") == -1:
            raise StreamError(f"{body.get('error')}: {body.get('message')}")
        if header.get("t") != "#commit":
            return []
        blocks: dict[str, Any] | None = None
        hits = []
        for op in body.get("ops") or ():
            collection, _, rkey = op["path"].partition("/")
            record = None
            if op["action"] == "create" and collection in (POST, FOLLOW):
                if blocks is None:
                    blocks = libipld.decode_car(body["blocks"])[1]
                record = blocks.get(op.get("cid"))
            hit = self.judge(body["repo"], op["action"], collection, rkey, None, record)
            if hit:
                cid = op.get("cid")
                hits.append(replace(hit, cid=cid_text(cid) if isinstance(cid, bytes) else cid))
        return hits

    def jetstream_hit(self, message: bytes | str) -> Hit | None:
        """Judge one Jetstream message (JSON, documented format)."""
        event = json.loads(message)
        commit = event.get("commit")
        if event.get("kind") != "commit" or not isinstance(commit, dict):
            return None
        return self.judge(event["did"], commit.get("operation", ""), commit.get("collection", ""),
                          commit.get("rkey", ""), commit.get("cid"), commit.get("record"))


class StreamError(Exception):
    """The server closed the stream with an error frame (FutureCursor, ConsumerTooSlow...)."""


def cid_text(cid: bytes) -> str:
    """A binary CID (as libipld decodes links) in its usual text form, "bafy..."."""
    return libipld.encode_multibase("b", cid)


def frame_seq(frame: bytes) -> int | None:
    """The sequence number of a firehose frame, read only when a cursor is saved."""
    body = libipld.decode_dag_cbor_multi(frame)[1]
    seq = body.get("seq") if isinstance(body, dict) else None
    return seq if isinstance(seq, int) else None


# ---- the pre-filter on raw bytes ----------------------------------------------------------------

class Prefilter:
    """Cheap byte tests that every message the rules could accept passes.

    - tagged posts: the ASCII-lowered message holds the folded tag, or a non-ASCII character that
      can stand inside a match (see `_lookalikes`); a non-ASCII tag disables this test (every
      post passes);
    - answers, mentions and follows of the bot: the bot's DID appears (in the parent uri, the
      mention facet, the follow's subject);
    - deletes of tracked posts: "delete" appears and, in a firehose frame, an op path
      "app.bsky.feed.post/<rkey>" names a tracked rkey (read through the CBOR text header just
      before it, every possible length form tried); in JSON, the post collection appears;
    - JSON only: a `\\u` escape could hide anything, so it passes.
    """

    def __init__(self, rules: Rules, *, json_text: bool = False) -> None:
        self.rules = rules
        self.bot_did = rules.bot_did.encode()
        self.ascii_tag = rules.tag.isascii()
        self.tag = rules.tag.encode() if self.ascii_tag else POST.encode()
        self.lookalikes = _lookalikes(rules.tag) if self.ascii_tag else ()
        self.post_path = POST.encode() + (b"" if json_text else b"/")
        self.json_text = json_text

    def passes(self, message: bytes) -> bool:
        if self.bot_did in message:
            return True
        if b"delete" in message and self.post_path in message and (
                self.json_text or self._names_tracked_rkey(message)):
            return True
        if not self.ascii_tag:
            return self.tag in message
        if self.tag in message.lower():
            return True
        if self.json_text and b"\\u" in message:
            return True
        return any(c in message for c in self.lookalikes)

    def _names_tracked_rkey(self, frame: bytes) -> bool:
        path, rkeys = self.post_path, self.rules.tracked_rkeys
        start = len(path)
        i = frame.find(path)
        while i >= 0:
            if any(frame[i + start:i + length] in rkeys for length in _text_lengths(frame, i)):
                return True
            i = frame.find(path, i + start)
        return False

    @staticmethod
    def is_error(frame: bytes) -> bool:
        return frame.startswith(_ERROR_HEADER)


def _text_lengths(frame: bytes, i: int) -> list[int]:
    """The lengths a CBOR text string starting at `i` may have, from the header bytes before it
    (short form 0x60-0x77, then one, two or four length bytes after 0x78, 0x79, 0x7a)."""
    out = []
    if i >= 1 and 0x60 <= frame[i - 1] <= 0x77:
        out.append(frame[i - 1] - 0x60)
    for width, major in ((1, 0x78), (2, 0x79), (4, 0x7A)):
        if i > width and frame[i - width - 1] == major:
            out.append(int.from_bytes(frame[i - width:i], "big"))
    return out


@lru_cache(maxsize=8)
def _lookalikes(tag: str) -> tuple[bytes, ...]:
    """UTF-8 of the non-ASCII characters that can stand inside a match of the (ASCII, folded) tag.

    In a match, every character's fold lies within the tag, except that the last one may run past
    its end if what follows is not a word character (the \\w+ of a hashtag stops there): "İ"
    folds to "i" + a combining dot, so "#SKİ" is #ski. Nothing folds to something ending in "#", so
    no character straddles the start. Unicode has case folds only below U+20000 (a test checks
    it). For "numpolville" the set is empty; the property test runs a tag where it is not."""
    found = []
    for c in range(0x80, CASED_LIMIT):
        fold = chr(c).casefold()
        if fold.isascii() or fold[0].isascii() and fold[0] in tag:
            inside = fold in tag
            runs_past = any(fold.startswith(tag[i:]) and len(fold) > len(tag) - i
                            and not _WORD.match(fold[len(tag) - i]) for i in range(len(tag)))
            if inside or runs_past:
                found.append(chr(c).encode())
    return tuple(found)
