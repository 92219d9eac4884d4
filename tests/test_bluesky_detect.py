"""Detection and conversion, without a network: the exact rules, the pre-filter's promise (it never
rejects what the rules accept: a property test) and the Post the core receives."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from types import SimpleNamespace

import libipld
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.bluesky.convert import to_post
from bot.bluesky.detect import (
    CASED_LIMIT,
    HASHTAG,
    TAG_FACET,
    Prefilter,
    Rules,
    StreamError,
    car_block,
    record_tags,
)
from bot.bluesky.firehose import FirehoseSource
from bot.bluesky.records import fit, graphemes, record_key, tid_micros
from tests.test_bluesky_frames import car, cid_of, commit_frame, jetstream_message

BOT = "did:plc:botbotbotbotbotbotbotbot"
ALICE = "did:plc:alicealicealicealicealic"
TAG = "numpolville"


def post(text: str, **extra: object) -> dict:
    return {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-03-01T10:00:00.000Z",
            **extra}


def tag_facet(tag: str) -> list[dict]:
    return [{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": TAG_FACET, "tag": tag}]}]


@pytest.mark.parametrize("record", [
    post("no hashtag in the text", facets=tag_facet("NumPolVille")),
    post("nothing here", tags=["NUMPOLVILLE"]),
    post("Une belle initiative #NumPolVille !"),
    post("#numpolville"),
    post("ligne\n#NUMPOLVILLE, et la suite"),
])
def test_tagged_in_any_case_and_any_place(record: dict) -> None:
    assert TAG in record_tags(record)


@pytest.mark.parametrize("record", [
    post("#numpolvillexyz is another tag"),
    post("no#numpolville glued to a word"),
    post("#numpolville_2026"),
    post("numpolville without the hash"),
    post("x", tags=["numpolvillexyz"], facets=tag_facet("numpolvilles")),
])
def test_not_tagged(record: dict) -> None:
    assert TAG not in record_tags(record)


def test_answers_mentions_follows_and_tracked_deletes() -> None:
    rules = Rules(TAG, BOT)
    answer = post("2", reply={"root": {"uri": f"at://{ALICE}/app.bsky.feed.post/a", "cid": "x"},
                              "parent": {"uri": f"at://{BOT}/app.bsky.feed.post/b", "cid": "y"}})
    mention = post("@bot", facets=[{"index": {"byteStart": 0, "byteEnd": 4},
                                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": BOT}]}])
    assert rules.wants_post(answer) and rules.wants_post(mention)
    assert not rules.wants_post(post("hello"))
    follow = {"$type": "app.bsky.graph.follow", "subject": BOT, "createdAt": "2026-03-01T10:00:00Z"}
    assert rules.judge(ALICE, "create", "app.bsky.graph.follow", "f", None, follow).kind == "follow"
    assert rules.judge(ALICE, "delete", "app.bsky.feed.post", "p1", None, None) is None
    rules.track(ALICE, "p1")
    assert rules.judge(ALICE, "delete", "app.bsky.feed.post", "p1", None, None).kind == "delete"


def test_edits_of_tracked_posts_and_edits_adding_the_tag() -> None:
    rules = Rules(TAG, BOT)
    untagged, tagged = post("plus rien"), post("désormais #numpolville")
    assert rules.judge(ALICE, "update", "app.bsky.feed.post", "p1", "c", untagged) is None
    assert rules.judge(ALICE, "update", "app.bsky.feed.post", "p1", "c", tagged).kind == "edit"
    rules.track(ALICE, "p1")
    assert rules.judge(ALICE, "update", "app.bsky.feed.post", "p1", "c", untagged).kind == "edit"
    frame = commit_frame(ALICE, [("update", "app.bsky.feed.post/p1", untagged)])
    assert Prefilter(rules).passes(frame) and [h.kind for h in rules.frame_hits(frame)] == ["edit"]
    message = jetstream_message(ALICE, "update", "app.bsky.feed.post/p1", untagged)
    assert list(Prefilter(rules, json_text=True).select([message])) == [message]


def test_frame_and_jetstream_paths_agree() -> None:
    rules = Rules(TAG, BOT)
    record = post("Hello #NumPolVille")
    frame = commit_frame(ALICE, [("create", "app.bsky.feed.post/3kabc", record),
                                 ("create", "app.bsky.feed.like/3kabd", {"subject": "x"})])
    hits = rules.frame_hits(frame)
    assert [(h.kind, h.rkey) for h in hits] == [("post", "3kabc")]
    assert hits[0].cid.startswith("bafyrei") and hits[0].record == record
    message = jetstream_message(ALICE, "create", "app.bsky.feed.post/3kabc", record)
    assert rules.jetstream_hit(message).record == record


def test_convert() -> None:
    record = post("Voir https://example.org #NumPolVille #Projet",
                  embed={"$type": "app.bsky.embed.external",
                         "external": {"uri": "https://example.org", "title": "Exemple", "description": ""}},
                  reply={"root": {"uri": "at://r", "cid": "c"}, "parent": {"uri": "at://p", "cid": "c"}})
    p = to_post(record, ALICE, "3kabc", "bafyx", bot_did=BOT)
    assert p.uri == f"at://{ALICE}/app.bsky.feed.post/3kabc"
    assert p.ref == f"{p.uri} bafyx"
    assert p.url == f"https://bsky.app/profile/{ALICE}/post/3kabc"
    assert p.tags == {"numpolville", "projet"} and p.has_tag("NumPolVille")
    assert (p.link, p.link_title, p.reply_to) == ("https://example.org", "Exemple", "at://p")
    assert p.created_at == datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    assert p.visibility == "public" and not p.mentions_bot


def test_record_keys_are_valid_tids_and_deterministic() -> None:
    uri = f"at://{ALICE}/app.bsky.feed.post/3n3f2syu72c2v"
    key = record_key("prompt", uri)
    assert key == record_key("prompt", uri) != record_key("repost", uri)
    assert len(key) == 13 and tid_micros(key) is not None
    assert abs(tid_micros(key) - tid_micros("3n3f2syu72c2v")) < 2_000_000  # near its subject
    assert tid_micros(record_key("prompt", "at://did:web:x/app.bsky.feed.post/self")) is not None


def test_graphemes() -> None:
    assert len(graphemes("1\ufe0f\u20e3 é\u0301 👩‍👩‍👧")) == 5
    assert len(graphemes(fit("x" * 400))) == 300


def test_unicode_case_folding_stops_below_the_scan_limit() -> None:
    """The pre-filter's look-alike scan stops at CASED_LIMIT; no character above folds."""
    assert all(chr(c).casefold() == chr(c) for c in range(CASED_LIMIT, sys.maxunicode + 1, 1))


# ---- the pre-filter never rejects what the rules accept ------------------------------------------

EXOTIC = "İıſ\u212aﬁﬂéß👍\u0307"  # characters whose case fold is (partly) ASCII, and friends
dids = st.sampled_from([ALICE, BOT, "did:plc:bobbobbobbobbobbobbobbob"])
LONG_RKEY = "k" * 300  # a path over 255 bytes: a two-byte CBOR length
rkeys = st.sampled_from(["3kaaa", "3kbbb", "3kccc", "3n3f2syu72c2v", "3n3f2syu72c2w", LONG_RKEY])


@st.composite
def spelled(draw: st.DrawFn, tag: str) -> str:
    """The tag written with any case and any character (or ligature) that folds to its letters."""
    out, i = "", 0
    while i < len(tag):
        ligature = next((x for x in EXOTIC if len(x.casefold()) > 1 and tag.startswith(x.casefold(), i)
                         and x.casefold().isascii()), None)
        if ligature and draw(st.booleans()):
            out, i = out + ligature, i + len(ligature.casefold())
            continue
        same = [tag[i], tag[i].upper()] + [x for x in EXOTIC if x.casefold() == tag[i]]
        out, i = out + draw(st.sampled_from(same)), i + 1
    return out


@st.composite
def operations(draw: st.DrawFn, tag: str) -> tuple[str, str, dict | None]:
    kind = draw(st.sampled_from(["post", "post", "like", "follow", "delete", "update"]))
    rkey = draw(rkeys)
    if kind == "delete":
        return ("delete", f"app.bsky.feed.{draw(st.sampled_from(['post', 'like']))}/{rkey}", None)
    if kind == "follow":
        return ("create", f"app.bsky.graph.follow/{rkey}",
                {"$type": "app.bsky.graph.follow", "subject": draw(dids), "createdAt": "2026"})
    if kind == "like":
        return ("create", f"app.bsky.feed.like/{rkey}",
                {"$type": "app.bsky.feed.like", "subject": {"uri": f"at://{draw(dids)}/x/y", "cid": "c"}})
    alphabet = st.sampled_from(sorted(set("#＃ _-.\n" + tag + tag.upper() + EXOTIC)))
    variants = [tag, tag.upper(), tag.title(), tag + "x", "#" + tag, "other"]
    noise = st.text(alphabet=alphabet, max_size=6)
    record = post(draw(noise) + draw(st.sampled_from("#＃")) + draw(spelled(tag)) + draw(noise)
                  if draw(st.booleans()) else draw(st.text(alphabet=alphabet, max_size=24)))
    if draw(st.booleans()):
        record["tags"] = draw(st.lists(st.sampled_from(variants), max_size=2))
    if draw(st.booleans()):
        record["facets"] = tag_facet(draw(st.sampled_from(variants)))
    if draw(st.booleans()):
        record["reply"] = {"root": {"uri": f"at://{draw(dids)}/app.bsky.feed.post/r", "cid": "c"},
                           "parent": {"uri": f"at://{draw(dids)}/app.bsky.feed.post/p", "cid": "c"}}
    return ("update" if kind == "update" else "create", f"app.bsky.feed.post/{rkey}", record)


# "fiski" has letters that non-ASCII characters fold to (ﬁ, ſ, the Kelvin sign, İ): it proves the
# look-alike rule; "numpolville" is the real tag.
@pytest.mark.parametrize("tag", [TAG, "fiski"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), repo=dids, ascii_json=st.booleans())
def test_prefilter_never_rejects_what_the_rules_accept(tag: str, data: st.DataObject, repo: str,
                                                       ascii_json: bool) -> None:
    ops = data.draw(st.lists(operations(tag), min_size=1, max_size=3))
    rules = Rules(tag, BOT, tracked={(ALICE, "3kaaa"), (BOT, "3kbbb"), (ALICE, "3n3f2syu72c2v"),
                                      (ALICE, LONG_RKEY)})
    frame = commit_frame(repo, ops)
    if rules.frame_hits(frame):
        assert Prefilter(rules).passes(frame)
    json_filter = Prefilter(rules, json_text=True)
    for action, path, record in ops:
        message = jetstream_message(repo, action, path, record, ascii_only=ascii_json)
        if rules.jetstream_hit(message):
            assert list(json_filter.select([message])) == [message]


@pytest.mark.parametrize("tag", [TAG, "fiski", "ＮＵＭ"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ascii_json=st.booleans())
def test_batch_prefilter_never_rejects_what_the_rules_accept(tag: str, data: st.DataObject,
                                                             ascii_json: bool) -> None:
    """`Prefilter.select` over a batch (messages of every kind, side by side: a needle may
    straddle two of them) hands over every message the rules accept, in order, judged lazily
    (a tagged post early in the batch is tracked when its delete comes later in it)."""
    commits = data.draw(st.lists(st.tuples(dids, st.lists(operations(tag), min_size=1, max_size=3)),
                                 min_size=1, max_size=12))
    tracked = {(ALICE, "3kaaa"), (BOT, "3kbbb"), (ALICE, "3n3f2syu72c2v"), (ALICE, LONG_RKEY)}
    error = libipld.encode_dag_cbor({"op": -1}) + libipld.encode_dag_cbor({"error": "X", "message": "m"})
    frames = [commit_frame(repo, ops) for repo, ops in commits]
    frames += data.draw(st.lists(st.sampled_from([error, b"", b"numpol", b"ville #"]), max_size=2))
    frames = data.draw(st.permutations(frames))
    lines = [jetstream_message(repo, action, path, record, ascii_only=ascii_json)
             for repo, ops in commits for action, path, record in ops]
    for messages, json_text in ((frames, False), (lines, True)):
        rules, reference = Rules(tag, BOT, tracked=set(tracked)), Rules(tag, BOT, tracked=set(tracked))

        def accepted(message: bytes, rules: Rules = reference, json_text: bool = json_text) -> bool:
            if not json_text and Prefilter.is_error(message):
                return True
            try:
                hits = [rules.jetstream_hit(message)] if json_text else rules.frame_hits(message)
            except Exception:
                return False
            for hit in hits:
                if hit and hit.kind == "post" and rules.tag in hit.tags:
                    rules.track(hit.did, hit.rkey)
            return any(hits)

        expected = [m for m in messages if accepted(m)]
        got = []
        for m in Prefilter(rules, json_text=json_text).select(list(messages)):
            if accepted(m, rules):  # handled as the stream does, before the next is judged
                got.append(m)
        assert got == expected


def test_lookalikes_count() -> None:
    assert "fiski" in record_tags(post("#ﬁſ\u212aİ"))  # folds to "fiski" + a combining dot
    assert Prefilter(Rules("fiski", BOT)).passes(commit_frame(ALICE, [("create", "app.bsky.feed.post/3k",
                                                                 post("#ﬁſ\u212aİ"))]))


def test_prefilter_rejects_most_traffic() -> None:
    like = commit_frame(ALICE, [("create", "app.bsky.feed.like/3kaaa",
                                 {"$type": "app.bsky.feed.like", "subject": {"uri": "at://x", "cid": "c"}})])
    plain = commit_frame(ALICE, [("create", "app.bsky.feed.post/3kaaa", post("bonjour"))])
    untracked = commit_frame(ALICE, [("delete", "app.bsky.feed.post/3n3f2syu72c2v", None)])
    prefilter = Prefilter(Rules(TAG, BOT, tracked={(ALICE, "3n3f2syu72c2w")}))
    assert not any(prefilter.passes(f) for f in (like, plain, untracked))


def test_a_message_that_does_not_decode_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    rules = Rules(TAG, BOT)
    source = FirehoseSource("ws://unused", SimpleNamespace(rules=rules), None, Prefilter(rules))
    events: list = []
    for bad in (b"\xa2 #numpolville garbage", commit_frame(ALICE, [])[:-3] + b"numpolville"):
        source._handle(bad, events.append)
    assert events == [] and caplog.text.count("does not decode") == 2


def test_an_error_frame_stops_the_stream() -> None:
    frame = libipld.encode_dag_cbor({"op": -1}) + libipld.encode_dag_cbor(
        {"error": "ConsumerTooSlow", "message": "slow"})
    assert Prefilter.is_error(frame)
    with pytest.raises(StreamError, match="ConsumerTooSlow"):
        Rules(TAG, BOT).frame_hits(frame)


@given(st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=200) | st.integers(-2**63, 2**63 - 1)),
                min_size=1, max_size=8, unique_by=repr))
def test_car_block_finds_what_decode_car_finds(records: list[dict]) -> None:
    """The walk over a CAR's sections agrees with libipld's full decoding, block by block."""
    blocks = [libipld.encode_dag_cbor(r) for r in records]
    data = car(blocks)
    decoded = libipld.decode_car(data)[1]
    for cid, record in zip(map(cid_of, blocks), records, strict=True):
        assert libipld.decode_dag_cbor(car_block(data, cid)) == decoded[cid] == record
    assert car_block(data, cid_of(b"not in it")) is None


def test_a_cut_car_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A CAR cut anywhere inside the tagged record's section: no event, a warning, no crash."""
    frame = commit_frame(ALICE, [("create", "app.bsky.feed.post/3kabc", post("#numpolville"))])
    header = libipld.encode_dag_cbor({"op": 1, "t": "#commit"})
    body = libipld.decode_dag_cbor_multi(frame)[1]
    rules = Rules(TAG, BOT)
    source = FirehoseSource("ws://unused", SimpleNamespace(rules=rules), None, Prefilter(rules))
    record_at = body["blocks"].index(body["ops"][0]["cid"])
    events: list = []
    cuts = range(record_at, len(body["blocks"]))  # inside its CID or its data
    for cut in cuts:
        source._handle(header + libipld.encode_dag_cbor(body | {"blocks": body["blocks"][:cut]}),
                       events.append)
    assert events == [] and caplog.text.count("does not decode") == len(cuts)


@given(st.text(alphabet=st.sampled_from("#＃a_é1 .\n🌱-") | st.characters(), max_size=40))
def test_hashtag_regex_is_the_plain_definition(text: str) -> None:
    """HASHTAG, written for speed, finds what the plain definition does: "#" (or "＃") not
    preceded by a word character, then the word characters after it."""
    assert HASHTAG.findall(text) == re.findall(r"(?<!\w)[#＃](\w+)", text)
