"""Consent and safety (#13), tried as a hostile or careless person would: the real `numpolville
run` process (and one-off commands: forget, export, digest --post, doctor) against the local
Mastodon-API server; what people would see is read on the server (notifications, the bot's
replies), what stays on disk is read from the database files' raw bytes.

On Bluesky (the reference network, at the end): the digest thread carries no mention facet, and
an account with the self-label "bot" is never prompted. The parser's negations are a table in
`test_parser.py`."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.bsky_network import BlueskyNetwork
from tests.mastodon_server import MastodonServer
from tests.test_bluesky_e2e import Bot as BlueskyBot
from tests.test_bluesky_e2e import row as bsky_row
from tests.test_bluesky_e2e import tagged as bsky_tagged
from tests.test_faults_support import (
    BOT,
    PASSWORD_ENV,
    TAG,
    TOKEN_ENV,
    BotProcess,
    json_lines,
    listening,
    numpolville,
    populate,
    query,
    wait_for,
    write_config,
)


@dataclass
class Running:
    """The bot process on `server`, its config and database."""

    server: MastodonServer
    config: Path
    db: Path
    token: str
    process: BotProcess

    def item(self, ref: str) -> dict[str, Any] | None:
        rows = query(self.db, "SELECT state, category, boosted_at, reason, uri FROM items "
                              "WHERE ref = ?", ref)
        return dict(zip(("state", "category", "boosted_at", "reason", "uri"), rows[0],
                        strict=True)) if rows else None

    def settled(self) -> bool:
        return query(self.db, "SELECT count(*) FROM intents WHERE state = 'pending'")[0][0] == 0

    def prompt_to(self, status_id: str) -> Any:
        return next((s for s in self.server.statuses(BOT) if s.in_reply_to_id == status_id), None)

    def replies_to(self, ids: set[str]) -> list[Any]:
        return [s for s in self.server.statuses(BOT) if s.in_reply_to_id in ids]

    def read(self, uris: list[str]) -> int:
        """How many of these posts the bot has logged (an event each, ignored ones too)."""
        marks = ",".join("?" * len(uris))
        return query(self.db, f"SELECT count(DISTINCT uri) FROM events WHERE uri IN ({marks})",
                     *uris)[0][0]


@pytest.fixture
def running(server: MastodonServer, tmp_path: Path) -> Iterator[Running]:
    token = populate(server)
    config = write_config(tmp_path, server)
    bot = BotProcess(config, tmp_path / "bot.log", {TOKEN_ENV: token})
    db = tmp_path / "bot.db"
    try:
        wait_for(lambda: listening(server, db), timeout=20, what="the bot to listen")
        yield Running(server, config, db, token, bot)
    finally:
        bot.stop()


def answer(r: Running, who: str, prompt_id: str, text: str) -> dict[str, Any]:
    return r.server.post(who, f"@{BOT} {text}", in_reply_to_id=prompt_id, visibility="unlisted")


def prompted(r: Running, who: str, text: str) -> tuple[dict[str, Any], Any]:
    """A tagged post by `who` and the bot's prompt to it, once the store knows the prompt."""
    post = r.server.post(who, f"{text} #{TAG}")
    prompt = wait_for(lambda: r.prompt_to(post["id"]), timeout=20, what="the prompt")
    wait_for(lambda: query(r.db, "SELECT prompt_uri FROM items WHERE ref = ?", post["id"])[0][0],
             what="the prompt stored")
    return post, prompt


def around_today() -> list[str]:
    """A digest period holding what was posted just now: whole days (`--since` alone ends at the
    current minute), one after today's UTC date too (the period is in Paris time)."""
    today = datetime.now(timezone.utc).date()
    return ["--since", (today - timedelta(days=2)).isoformat(),
            "--until", (today + timedelta(days=1)).isoformat()]


def disk_bytes(db: Path) -> bytes:
    """Every byte of the database's files: the file itself, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


# ---- 1: the digest thread mentions no one ---------------------------------------------------------

def test_digest_thread_notifies_no_one_it_quotes(running: Running) -> None:
    r, server = running, running.server
    server.create_account("carol")
    server.create_account("dan")
    # dan by his full address (the server shows it as "@dan"), eve on a server it does not know
    quoting = server.post("user1", f"@carol, @dan@{server.domain} et @eve@piaille.example lancent "
                                   f"un atelier #{TAG} #projet")
    wait_for(lambda: (r.item(quoting["id"]) or {}).get("boosted_at"), timeout=20,
             what="the quoting post classified and boosted")
    out = numpolville(r.config, "digest", "--format", "md", "--post", *around_today(),
                      env={TOKEN_ENV: r.token})
    assert out.returncode == 0, out.stderr
    thread = [s for s in server.statuses(BOT) if s.visibility == "public"]
    quoted = [s for s in thread if "carol" in s.text]
    assert quoted, [s.text for s in thread]
    # still reads "@carol, @dan et @eve@piaille.example"
    assert "@\u200bcarol, @\u200bdan et @\u200beve@piaille.example" in quoted[0].text
    assert all(s.mention_ids == [] for s in thread), "the server parsed a mention in the thread"
    for who in ("carol", "dan"):
        from_bot = [n for n in server.notifications(who) if n["account"]["username"] == BOT]
        assert from_bot == [], (who, from_bot)
    assert [n["type"] for n in server.notifications("carol")] == ["mention"]  # user1's own post


# ---- 2: a negated category is not an answer --------------------------------------------------------

def test_pas_projet_is_not_read_as_projet(running: Running) -> None:
    r = running
    post, prompt = prompted(r, "user8", "Un partage https://example.org/pas")
    negated = answer(r, "user8", prompt.id, "pas projet")
    wait_for(lambda: r.read([negated["uri"]]) and r.settled(), timeout=20, what="the answer read")
    assert (r.item(post["id"]) or {}).get("state") == "prompted"
    assert [s.in_reply_to_id for s in r.replies_to({negated["id"]})] == [negated["id"]]  # not understood
    answer(r, "user8", prompt.id, "contexte")
    wait_for(lambda: (r.item(post["id"]) or {}).get("category") == "contexte", timeout=20,
             what="the plain answer classifies")


# ---- 3: at most one help and one not-understood reply per item ----------------------------------

def test_five_help_requests_get_one_help_reply(running: Running) -> None:
    r = running
    post, prompt = prompted(r, "user2", "Un partage https://example.org/aide")
    asked = [answer(r, "user2", prompt.id, text) for text in ("aide", "Aide ?", "help", "aide", "?")]
    unclear = [answer(r, "user2", prompt.id, text) for text in ("bof", "hmm", "euh")]
    answers = asked + unclear
    wait_for(lambda: r.read([a["uri"] for a in answers]) == len(answers) and r.settled(), timeout=30,
             what="every answer read and replied to")
    replies = r.replies_to({a["id"] for a in answers})
    assert len(replies) == 2, [s.text for s in replies]
    assert {s.in_reply_to_id for s in replies} == {asked[0]["id"], unclear[0]["id"]}
    silent = query(r.db, "SELECT count(*) FROM events WHERE action = 'ignore' AND reason LIKE ?",
                   "% already replied for this item; staying quiet")[0][0]
    assert silent == len(answers) - 2  # the silence is logged
    answer(r, "user2", prompt.id, "3")
    wait_for(lambda: (r.item(post["id"]) or {}).get("state") == "classified", timeout=20,
             what="a real answer still classifies")


# ---- 4: an erasure that erases, with the bot running and after it stopped ---------------------------

def test_forget_takes_her_bytes_off_the_disk_and_keeps_her_stop(running: Running) -> None:
    r, server = running, running.server
    marker = "EFFACEZMOI"
    server.core.max_characters = 200_000  # type: ignore[union-attr]  # long: overflow pages too
    other, other_prompt = prompted(r, "user3", "Le partage de quelqu'un d'autre")
    post, prompt = prompted(r, "user1", f"{marker} https://example.org/{marker} " + "long " * 2000)
    answers = [answer(r, "user1", prompt.id, f"aide {marker}"),  # a help reply, keyed by this uri
               answer(r, "user1", other_prompt.id, f"{marker} 2"),  # not hers to answer: ignored
               answer(r, "user1", prompt.id, "stop")]
    wait_for(lambda: r.read([a["uri"] for a in answers]) == 3 and r.settled(), timeout=30,
             what="her answers read and replied to")
    assert marker.encode() in disk_bytes(r.db)  # the search below can find her
    out = numpolville(r.config, "forget", "user1", "--yes")
    assert out.returncode == 0 and "Erased 1 items" in out.stdout, out.stdout + out.stderr
    traces = [marker.encode()] + [p["uri"].encode() for p in (post, *answers)]  # text, addresses
    assert b"users/user1/" in b" ".join(traces)
    assert [t for t in traces if t in disk_bytes(r.db)] == [], "on disk with the bot running"
    assert query(r.db, "SELECT network, account_id, opted_out FROM suppressions") == [
        ("mastodon", server.account("user1").id, 1)]
    # Her "stop" outlived her data: a new post is recorded, never prompted.
    again = server.post("user1", f"De nouveau là #{TAG}")
    control, _ = prompted(r, "user4", "Un partage témoin")
    wait_for(lambda: r.item(again["id"]), what="her new post recorded")
    assert r.item(again["id"])["state"] == "seen"  # type: ignore[index]
    assert r.prompt_to(again["id"]) is None and r.prompt_to(control["id"]) is not None
    code, _ = r.process.signal(15)
    assert code == 0
    closed = [e for e in json_lines(r.process.log) if e.get("message") == f"database {r.db} closed"]
    assert closed and not (r.db.parent / f"{r.db.name}-wal").exists(), "the store was not closed"
    assert [t for t in traces if t in disk_bytes(r.db)] == [], "on disk after the bot stopped"
    assert other["id"] and r.item(other["id"]) is not None  # the others' items are kept


# ---- 5: CSV cells are never formulas -------------------------------------------------------------

def test_csv_export_neutralises_formulas(running: Running) -> None:
    r, server = running, running.server
    hostile = ['=HYPERLINK("https://evil.example/x","clic ici")', "+33 1 23 45 67 89",
               "-1 pour ce rapport", "@user5 regarde ça"]
    posts = [server.post("user6", f"{text} #{TAG}") for text in hostile]
    wait_for(lambda: all(r.item(p["id"]) for p in posts) and r.settled(), timeout=20,
             what="the hostile posts recorded")
    out = numpolville(r.config, "export", "--format", "csv")
    assert out.returncode == 0, out.stderr
    cells = {row["text"] for row in csv.DictReader(io.StringIO(out.stdout))}
    for text in hostile:
        assert any(c.startswith("'" + text) for c in cells), (text, cells)
        assert not any(c.startswith(text[0]) for c in cells)
    exported = json.loads(numpolville(r.config, "export", "--format", "json").stdout)
    assert {row["text"].split(" #")[0] for row in exported} == set(hostile)  # JSON unchanged


# ---- 6: bot accounts are recorded, classified when they tag, never prompted --------------------------

def test_a_bot_account_is_never_prompted(running: Running) -> None:
    r, server = running, running.server
    server.create_account("newsbot", note="Flux automatique", bot=True)
    server.follow("newsbot", BOT)
    plain = server.post("newsbot", f"Dépêche : un rapport https://example.org/depeche #{TAG}")
    tagged = server.post("newsbot", f"Dépêche : un projet https://example.org/p #{TAG} #projet")
    control, _ = prompted(r, "user7", "Un partage d'une personne")  # people still are
    wait_for(lambda: (r.item(tagged["id"]) or {}).get("boosted_at") and r.item(plain["id"]),
             timeout=20, what="the bot's posts recorded")
    assert r.item(plain["id"])["state"] == "seen"  # type: ignore[index]
    assert "bot account" in r.item(plain["id"])["reason"]  # type: ignore[index]
    assert r.item(tagged["id"])["category"] == "projet"  # type: ignore[index]
    assert r.replies_to({plain["id"], tagged["id"]}) == [] and r.prompt_to(control["id"])
    assert query(r.db, "SELECT bot FROM authors WHERE handle = 'newsbot'") == [(1,)]
    assert query(r.db, "SELECT bot FROM authors WHERE handle = 'user7'") == [(0,)]


# ---- 7: a .env others can read --------------------------------------------------------------------

def test_a_readable_env_file_is_warned_and_fails_doctor(server: MastodonServer, tmp_path: Path) -> None:
    assert TOKEN_ENV not in os.environ  # the token comes from the .env alone
    token = populate(server)
    config = write_config(tmp_path, server)
    env_file = tmp_path / ".env"
    env_file.write_text(f"{TOKEN_ENV}={token}\n", encoding="utf-8")
    env_file.chmod(0o644)
    bot = BotProcess(config, tmp_path / "bot.log", {})
    try:
        wait_for(lambda: listening(server, tmp_path / "bot.db"), timeout=20,
                 what="the bot to listen with the token from .env")
    finally:
        bot.stop()
    fix = "chmod 600 .env"
    assert fix in (tmp_path / "bot.log").read_text(encoding="utf-8")
    stats = numpolville(config, "stats")
    assert stats.returncode == 0 and fix in stats.stderr and "0644" in stats.stderr, stats.stderr
    doctor = numpolville(config, "doctor")
    assert doctor.returncode == 1
    [line] = [x for x in doctor.stdout.splitlines() if "secrets file" in x]
    assert line.startswith("✘") and fix in doctor.stdout, doctor.stdout
    env_file.chmod(0o600)
    assert fix not in numpolville(config, "stats").stderr
    [line] = [x for x in numpolville(config, "doctor").stdout.splitlines() if "secrets file" in x]
    assert line.startswith("✔"), line


# ---- Bluesky: the digest thread (1) and a self-labelled bot (6) on the reference network ----------
# The bot is the in-process Runtime + BlueskyAdapter (as in test_faults_bluesky.py); the thread is
# posted by the real `numpolville digest --post` process.

@pytest.fixture(scope="module")
def bsky(bsky_network: BlueskyNetwork) -> Iterator[tuple[BlueskyNetwork, dict[str, Any]]]:
    """Logged-in clients; dan follows the bot (undone afterwards: the network is shared)."""
    if not bsky_network.has_appview:
        pytest.skip("the Bluesky tests need the AppView (PostgreSQL)")
    clients = {name: bsky_network.client(name) for name in ("bot", "alice", "carol", "dan")}
    follow = clients["dan"].follow(bsky_network.did("bot")).uri
    yield bsky_network, clients
    clients["dan"].delete_follow(follow)


def bluesky_config(net: BlueskyNetwork, tmp_path: Path) -> Path:
    config = tmp_path / "numpolville.toml"
    config.write_text(f"""
hashtag = "{TAG}"
database = "{tmp_path / 'bot.db'}"

[bluesky]
enabled = true
service = "{net.pds_url}"
handle = "{net.handle('bot')}"
source = "firehose"
firehose_url = "{net.firehose_url}"
""", encoding="utf-8")
    return config


def test_digest_thread_on_bluesky_has_no_mention_facet(bsky: tuple[BlueskyNetwork, dict[str, Any]],
                                                       tmp_path: Path) -> None:
    net, people = bsky
    carol, bot_did = net.handle("carol"), net.did("bot")
    b = BlueskyBot(net, tmp_path / "bot.db").start()
    try:
        post = people["alice"].send_post(text=f"@{carol} lance un atelier {time.time_ns()} "
                                              f"#{TAG} #projet")
        wait_for(lambda: (r := bsky_row(b.store, post.uri)) and r["boost_ref"], timeout=30,
                 what="the quoting post classified and reposted")
    finally:
        b.stop()
    out = numpolville(bluesky_config(net, tmp_path), "digest", "--format", "md", "--post",
                      *around_today(), env={PASSWORD_ENV: net.accounts["bot"]["password"]})
    assert out.returncode == 0, out.stderr
    [(refs,)] = query(tmp_path / "bot.db", "SELECT refs FROM digests WHERE network = 'bluesky'")
    uris = [ref.split()[0] for ref in json.loads(refs)]
    thread = [net.wait_visible(uri).record for uri in uris]
    assert any(f"@\u200b{carol}" in p.text for p in thread), [p.text for p in thread]
    features = [f.py_type for p in thread for facet in p.facets or () for f in facet.features]
    assert "app.bsky.richtext.facet#mention" not in features, features
    notes = people["carol"].app.bsky.notification.list_notifications({"limit": 100}).notifications
    assert [n for n in notes if n.author.did == bot_did and n.reason == "mention"] == []


def test_a_bluesky_account_labelled_bot_is_never_prompted(bsky: tuple[BlueskyNetwork, dict[str, Any]],
                                                          tmp_path: Path) -> None:
    from bot.bluesky.profile import PROFILE, read_profile, with_bot_label

    net, people = bsky
    dan, did = people["dan"], net.did("dan")
    before, _ = read_profile(dan, did)

    def labels() -> list[str]:
        view = net.appview_client().app.bsky.actor.get_profile({"actor": did})
        return [label.val for label in view.labels or () if label.src == did]

    dan.com.atproto.repo.put_record({"repo": did, "collection": PROFILE, "rkey": "self",
                                     "record": with_bot_label(before)})
    try:
        net.wait_until(lambda: "bot" in labels(), what="dan's bot label indexed")
        b = BlueskyBot(net, tmp_path / "bot.db").start()
        try:
            post = bsky_tagged(dan, f"Dépêche automatique {time.time_ns()}")
            wait_for(lambda: bsky_row(b.store, post.uri), timeout=30, what="the labelled post recorded")
            row = bsky_row(b.store, post.uri)
            assert row and row["state"] == "seen" and "bot account" in row["reason"], row
            assert b.store._all("SELECT bot FROM authors WHERE id = ?", did) == [{"bot": 1}]
        finally:
            b.stop()
    finally:
        if before is None:
            dan.com.atproto.repo.delete_record({"repo": did, "collection": PROFILE, "rkey": "self"})
        else:
            dan.com.atproto.repo.put_record({"repo": did, "collection": PROFILE, "rkey": "self",
                                             "record": before})
        net.wait_until(lambda: "bot" not in labels(), what="dan's bot label gone")
