"""The hot path: which records, frames and Jetstream messages concern the bot.

A relay carries every commit of every account, and the bot cares about a handful. So each batch
of raw messages first meets `Prefilter.select`, a few byte searches that may let through too much
but never too little (property tests hold it to that), and only the survivors are decoded (libipld,
orjson) and judged by the exact rules below, on plain dicts.

Tag matching is case-insensitive in the Unicode sense (`str.casefold`), never a substring match:
`#numpolvillexyz` is another tag.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import Any, Literal, NamedTuple

import libipld
import orjson

POST = "app.bsky.feed.post"
FOLLOW = "app.bsky.graph.follow"
TAG_FACET = "app.bsky.richtext.facet#tag"
MENTION_FACET = "app.bsky.richtext.facet#mention"
LINK_FACET = "app.bsky.richtext.facet#link"

# "#" not preceded by a word character, then the tag. The look-behind comes after the "#" (it
# sees the character before it and the "#" itself) so that the regex engine can skip to each "#":
# written first, as (?<!\w)[#＃], it is tried at every position (7x slower on a 200-char post).
HASHTAG = re.compile(r"[#＃](?<!\w[#＃])(\w+)")
_WORD = re.compile(r"\w")
_RKEY = re.compile(r"(?!\.\.?$)[A-Za-z0-9._:~-]{1,512}")  # the record key syntax
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
        tags.update(HASHTAG.findall(text.casefold()))
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


class Hit(NamedTuple):
    """One operation that concerns the bot, as found in a commit (a tuple: made in a third of the
    time of a frozen dataclass, on the hot path)."""

    kind: Literal["post", "edit", "delete", "follow"]
    did: str  # the repository (author)
    rkey: str
    cid: str | None = None
    record: dict[str, Any] = {}  # noqa: RUF012 (never mutated: the record as decoded)
    tags: frozenset[str] = frozenset()  # of a post, as `record_tags` finds them


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

    def wants_post(self, record: dict[str, Any], tags: frozenset[str] | None = None) -> bool:
        """Tagged, an answer to one of the bot's posts, or a mention of the bot."""
        if self.tag in (record_tags(record) if tags is None else tags):
            return True
        parent = reply_parent(record)
        return (parent is not None and parent.startswith(self._bot_repo)) or mentions(record, self.bot_did)

    def judge(self, did: str, action: str, collection: str, rkey: str, cid: str | None,
              record: Any) -> Hit | None:
        """The one rule for an operation, whatever stream it came from. A hit must name a valid
        repository and record key: they become the post's URI and keys in the store."""
        if collection == POST and action == "create" and isinstance(record, dict) \
                and self.wants_post(record, tags := record_tags(record)):
            hit = Hit("post", did, rkey, cid, record, tags)
        elif collection == POST and action == "update" and isinstance(record, dict) \
                and (self.tag in (tags := record_tags(record)) or (did, rkey) in self.tracked):
            hit = Hit("edit", did, rkey, cid, record, tags)  # now tagged, or no longer
        elif collection == POST and action == "delete" and (did, rkey) in self.tracked:
            hit = Hit("delete", did, rkey)
        elif (collection == FOLLOW and action == "create" and isinstance(record, dict)
              and record.get("subject") == self.bot_did):
            hit = Hit("follow", did, rkey, cid, record)
        else:
            return None
        if not (isinstance(rkey, str) and _RKEY.fullmatch(rkey) and isinstance(did, str)
                and did.startswith("did:")):
            raise ValueError(f"an operation on {collection} without a valid repository or record key")
        return hit

    def frame_hits(self, frame: bytes) -> list[Hit]:
        """Decode one firehose frame (`subscribeRepos`) and judge each of its operations. Only the
        blocks of the records judged are decoded, not the whole CAR (its MST nodes cost more)."""
        header, body = libipld.decode_dag_cbor_multi(frame)
        if header.get("op") == -1:
            raise StreamError(f"{body.get('error')}: {body.get('message')}")
        if header.get("t") != "#commit":
            return []
        hits = []
        for op in body.get("ops") or ():
            collection, _, rkey = op["path"].partition("/")
            cid, record = op.get("cid"), None
            if op["action"] in ("create", "update") and collection in (POST, FOLLOW) \
                    and isinstance(cid, bytes):
                block = car_block(body["blocks"], cid)
                record = None if block is None else libipld.decode_dag_cbor(block)
                cid = cid_text(cid)
            hit = self.judge(body["repo"], op["action"], collection, rkey,
                             cid if isinstance(cid, str) else None, record)
            if hit:
                hits.append(hit)
        return hits

    def jetstream_hit(self, message: bytes | str) -> Hit | None:
        """Judge one Jetstream message (JSON, documented format)."""
        event = orjson.loads(message)
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


def car_block(car: bytes, cid: bytes) -> bytes | None:
    """The data of block `cid` in a CAR file (v1: a header, then sections of varint length, CID,
    data), found by walking the sections; None if it is not there. ValueError if the CAR is cut."""
    length, p = _varint(car, 0)
    p += length
    while p < len(car):
        length, p = _varint(car, p)
        end = p + length
        if end > len(car):
            raise ValueError("a CAR section runs past its end")
        if car.startswith(cid, p) and _cid_end(car, p) == p + len(cid):
            return car[p + len(cid):end]
        p = end
    return None


def _cid_end(data: bytes, p: int) -> int:
    """Where the binary CID (v1: version, codec, hash code, digest length, digest) at `p` ends."""
    for _ in range(3):
        _, p = _varint(data, p)
    size, p = _varint(data, p)
    return p + size


def _varint(data: bytes, p: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at `p`: (value, position after it). Raises IndexError if cut."""
    value = shift = 0
    while True:
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, p
        shift += 7


def frame_seq(frame: bytes) -> int | None:
    """The sequence number of a firehose frame, read only when a cursor is saved."""
    parts = libipld.decode_dag_cbor_multi(frame)
    body = parts[1] if len(parts) > 1 else None  # a frame may be a header alone
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
    - deletes and edits (updates) of tracked posts: "delete" or "update" appears and, in a
      firehose frame, an op path
      "app.bsky.feed.post/<rkey>" names a tracked rkey (read through the CBOR text header just
      before it, every possible length form tried);
    - Jetstream: a backslash passes (an escape could hide anything), and see `select`.
    """

    def __init__(self, rules: Rules, *, json_text: bool = False) -> None:
        self.rules = rules
        self.bot_did = rules.bot_did.encode()
        self.ascii_tag = rules.tag.isascii()
        self.tag = rules.tag.encode() if self.ascii_tag else POST.encode()
        self.lookalikes = _lookalikes(rules.tag) if self.ascii_tag else ()
        self.post_path = POST.encode() + b"/"
        self.json_text = json_text
        # what every message that `passes` (or is an error frame) holds; a JSON delete or edit
        # without escapes says "delete" or "update" in quotes, and an escape could hide anything
        exact = [self.bot_did, *self.lookalikes] + (
            [b'"delete"', b'"update"', b"\\"] if json_text else [b"delete", b"update", _ERROR_HEADER])
        self._needles = Needles(exact, caseless=[self.tag]) if self.ascii_tag else None

    def select(self, batch: list[bytes]) -> Iterator[bytes]:
        """The messages of `batch` to handle, in order: at least those that `pass`, and error frames.

        One scan of the batch finds the messages holding a needle (the bot's DID, "delete", the
        folded tag in any ASCII case or a look-alike, an error header, in JSON a backslash); with
        a non-ASCII tag every post may pass, so every message is a candidate. A candidate frame
        then meets `passes`, which reads its op paths; a candidate Jetstream message that holds
        the post collection as a value, or the follow collection and the bot's DID, goes straight
        to the rules: orjson decodes it faster than Python code could read where they are.

        Lazy: a frame is judged when the caller asks for the next one, after it handled those
        before (a post tagged early in a batch is tracked when its delete, later on, is judged)."""
        candidates = iter(batch) if self._needles is None else map(batch.__getitem__,
                                                                   self._needles.holders(batch))
        if self.json_text:  # a post, or a follow of the bot (unless an escape hides them)
            bot = self.bot_did
            return (m for m in candidates
                    if _POST_VALUE in m or _FOLLOW_VALUE in m and bot in m or b"\\" in m)
        passes, is_error = self.passes, self.is_error
        return (m for m in candidates if passes(m) or is_error(m))

    def passes(self, frame: bytes) -> bool:
        """Could the rules accept this firehose frame? A commit's ops are read from the head of
        its body (no scan of its blocks); anything unusual meets `scan`. (A Jetstream candidate
        goes to the rules without this: see `select`.)"""
        try:
            verdict = self._frame(frame)
        except (IndexError, ValueError):
            verdict = None
        return self.scan(frame) if verdict is None else verdict

    def _content(self, message: bytes) -> bool:
        """Could a post in `message` be tagged, answer or mention the bot?"""
        if self.bot_did in message:
            return True
        if not self.ascii_tag:
            return True
        if self.tag in message.lower():
            return True
        return any(c in message for c in self.lookalikes)

    def _frame(self, frame: bytes) -> bool | None:
        if not frame.startswith(_COMMIT_HEADER):
            return None if b"#commit" in frame else False
        path = _single_op_path(frame)
        if path is not None:  # the usual commit: one op, read at a fixed place
            collection, _, rkey = path.partition(b"/")
            if collection == _POST:
                return rkey in self.rules.tracked_rkeys or self._content(frame)
            return collection == _FOLLOW and self.bot_did in frame
        ops = _commit_ops(frame)
        if ops is None:
            return None
        post = follow = False
        for action, path in ops:
            collection, _, rkey = path.partition(b"/")
            if collection == _POST:
                if action in (b"delete", b"update") and rkey in self.rules.tracked_rkeys:
                    return True
                post = post or action in (b"create", b"update")
            elif collection == _FOLLOW and action == b"create":
                follow = True
        if post:
            return self._content(frame)
        return follow and self.bot_did in frame

    def scan(self, frame: bytes) -> bool:
        """The plain byte tests on a whole frame (for frames `_frame` cannot read)."""
        if self.bot_did in frame:
            return True
        if (b"delete" in frame or b"update" in frame) and self.post_path in frame \
                and self._names_tracked_rkey(frame):
            return True
        if not self.ascii_tag:
            return self.tag in frame
        if self.tag in frame.lower():
            return True
        return any(c in frame for c in self.lookalikes)

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


class Needles:
    """Which messages of a batch hold any of a few byte strings, in one pass over the batch.

    Hyperscan's literal matcher scans the joined batch for all the needles at once (caseless
    ones in any ASCII case) at several GB/s, where a `bytes.find` per needle, and a lowered copy
    for the caseless one, cost four to five times as much. A match straddling two messages makes
    the later one a candidate, which `passes` then rejects: harmless."""

    def __init__(self, exact: list[bytes], caseless: list[bytes]) -> None:
        import hyperscan  # imported here: only the stream sources need it

        needles = exact + caseless
        self.db = hyperscan.Database()
        self.db.compile(expressions=needles, ids=list(range(len(needles))), elements=len(needles),
                        flags=[0] * len(exact) + [hyperscan.HS_FLAG_CASELESS] * len(caseless),
                        literal=True)
        self.db.scratch = hyperscan.Scratch(self.db)

    def holders(self, batch: list[bytes]) -> list[int]:
        """The indices of the messages holding a needle, in order."""
        ends: list[int] = []
        self.db.scan(b"".join(batch), match_event_handler=lambda _i, _s, end, _f, _c: ends.append(end))
        if not ends:
            return []
        bounds = list(accumulate(map(len, batch)))
        # a match ends at `end` (exclusive): its last byte lies in the first message ending after it
        return sorted({bisect_left(bounds, end) for end in ends})


_COMMIT_HEADER = b"\xa2atg#commitbop\x01"  # DAG-CBOR {"t": "#commit", "op": 1}
_POST, _FOLLOW = POST.encode(), FOLLOW.encode()
# in JSON, quoted: a like's subject names a post too, in a URI ("…/app.bsky.feed.post/3k…")
_POST_VALUE, _FOLLOW_VALUE = b'"%s"' % _POST, b'"%s"' % _FOLLOW


def _head(m: bytes, p: int) -> tuple[int, int, int]:
    """A CBOR item head at `p`: (major type, argument, position after it)."""
    b = m[p]
    info = b & 31
    if info < 24:
        return b >> 5, info, p + 1
    if info == 24:
        return b >> 5, m[p + 1], p + 2
    if info == 25:
        return b >> 5, int.from_bytes(m[p + 1:p + 3], "big"), p + 3
    if info == 26:
        return b >> 5, int.from_bytes(m[p + 1:p + 5], "big"), p + 5
    raise ValueError("unexpected CBOR head")


def _single_op_path(frame: bytes) -> bytes | None:
    """The op path of a canonical one-op `#commit` frame, from fixed offsets: header (15 bytes),
    body map head, "ops", [1 op], {"cid": link or null, "path": ...}; None if shaped otherwise."""
    if frame[20] != 0x81 or frame[16:20] != b"cops" or not 0xA0 <= frame[15] < 0xB8 \
            or frame[22:26] != b"ccid" or not 0xA2 <= frame[21] < 0xB8:
        return None
    if frame[26:30] == b"\xd8\x2a\x58\x25":
        q = 67
    elif frame[26] == 0xF6:
        q = 27
    else:
        return None
    if frame[q:q + 5] != b"dpath":
        return None
    head = frame[q + 5]
    if head == 0x78:
        return frame[q + 7:q + 7 + frame[q + 6]]
    if 0x60 <= head < 0x78:
        return frame[q + 6:q + head - 0x5A]
    return None


def _commit_ops(frame: bytes) -> list[tuple[bytes, bytes]] | None:
    """(action, path) of every op of a canonical `#commit` frame, read from the start of its body
    (DAG-CBOR sorts keys by length first, so "ops" comes first); None when the frame is not shaped
    that way (the caller then scans). Raises IndexError/ValueError on a truncated frame."""
    major, _, p = _head(frame, len(_COMMIT_HEADER))
    if major != 5 or frame[p:p + 4] != b"cops":
        return None
    major, count, p = _head(frame, p + 4)
    if major != 4:
        return None
    ops = []
    for _ in range(count):
        keys = frame[p] - 0xA0
        if not 0 < keys < 24:
            return None
        p += 1
        action = path = None
        for _ in range(keys):
            length = frame[p] - 0x60  # keys are short texts
            if not 0 < length < 24:
                return None
            key = frame[p + 1:p + 1 + length]
            p += 1 + length
            head = frame[p]
            if 0x60 <= head < 0x78:  # short text
                value, p = frame[p + 1:p + head - 0x5F], p + head - 0x5F
            elif head == 0x78:  # text, one length byte
                value, p = frame[p + 2:p + 2 + frame[p + 1]], p + 2 + frame[p + 1]
            elif head == 0xD8 and frame[p + 1] == 0x2A and frame[p + 2] == 0x58:  # CID link
                value, p = None, p + 4 + frame[p + 3]
            elif head == 0xF6:  # null
                value, p = None, p + 1
            else:
                return None
            if key == b"action":
                action = value
            elif key == b"path":
                path = value
        if action is None or path is None:
            return None
        ops.append((action, path))
    return ops


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
