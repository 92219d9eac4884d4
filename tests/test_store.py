"""The store: idempotent writes, intents that survive a restart, migrations, forgetting."""

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot import model as m
from bot.config import parse
from bot.curator import Curator
from bot.store import Store

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
ALICE = m.Author("mastodon", "1", "alice@home.test", follows_bot=True, bio="hello")


def tagged(uri: str = "u1", author: m.Author = ALICE) -> m.Post:
    return m.Post("mastodon", uri, uri + "-id", "https://home.test/" + uri, author,
                  "Un lien #numpolville https://example.org", T0, tags=frozenset({"numpolville"}),
                  link="https://example.org", link_title="Example")


def test_the_same_post_twice_is_one_item_one_prompt(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    curator = Curator(parse({}), store)
    first = curator.handle(m.PostSeen(tagged()))
    second = curator.handle(m.PostSeen(tagged()))
    assert [type(i.action).__name__ for i in first] == ["Prompt"]
    assert second == []
    assert store.db["items"].count == 1
    assert store.db["intents"].count == 1


def test_intents_survive_a_restart_and_complete_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Curator(parse({}), Store(path)).handle(m.PostSeen(tagged()))
    reopened = Store(path)  # a killed process: the intent was written, never done
    [intent] = reopened.pending_intents("mastodon")
    assert isinstance(intent.action, m.Prompt) and intent.action.post == tagged()
    reopened.intent_done(intent, "https://home.test/p1 p1")
    assert reopened.pending_intents("mastodon") == []
    item = reopened.item("mastodon", "u1")
    assert item and item.prompt_uri == "https://home.test/p1"
    assert reopened.prompt_ref("mastodon", "u1") == "p1"
    assert reopened.item_by_prompt("mastodon", "https://home.test/p1") == item


def test_answer_flow_records_classification_and_boost(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    curator = Curator(parse({}), store)
    [prompt] = curator.handle(m.PostSeen(tagged()))
    store.intent_done(prompt, "P P")
    answer = m.Post("mastodon", "r1", "r1", "u", ALICE, "2", T0, reply_to="P")
    intents = curator.handle(m.PostSeen(answer))
    assert [type(i.action).__name__ for i in intents] == ["Acknowledge", "Boost"]
    store.intent_done(intents[1], "reblog-1")
    item = store.item("mastodon", "u1")
    assert item and item.category == "contexte" and item.state == "classified" and item.boosted
    # the delete undoes the boost, once
    [unboost] = curator.handle(m.PostDeleted("mastodon", "u1"))
    store.intent_done(unboost, None)
    gone = store.item("mastodon", "u1")
    assert gone and gone.state == "deleted" and not gone.boosted
    assert curator.handle(m.PostDeleted("mastodon", "u1")) == []


def test_failed_intents_are_retried_unless_final(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    [intent] = Curator(parse({}), store).handle(m.PostSeen(tagged()))
    store.intent_failed(intent, "503", final=False)
    assert [i.attempts for i in store.pending_intents("mastodon")] == [1]
    store.intent_failed(intent, "404 gone", final=True)
    assert store.pending_intents("mastodon") == []


def test_opt_out_is_remembered(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    curator = Curator(parse({}), store)
    [prompt] = curator.handle(m.PostSeen(tagged()))
    store.intent_done(prompt, "P P")
    curator.handle(m.PostSeen(m.Post("mastodon", "r1", "r1", "u", ALICE, "stop", T0, reply_to="P")))
    assert store.author_state("mastodon", "1").opted_out
    assert curator.handle(m.PostSeen(tagged("u2"))) == []  # recorded, not prompted
    assert store.item("mastodon", "u2").state == "seen"  # type: ignore[union-attr]


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    assert Store(path).schema_version() >= 1
    store = Store(path)
    assert store.db["_migrations"].count == store.schema_version()
    assert store.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cursors(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.cursor("bluesky", "firehose") is None
    store.set_cursor("bluesky", "firehose", "42")
    store.set_cursor("bluesky", "firehose", "43")
    assert store.cursor("bluesky", "firehose") == "43"


def test_forget_erases_items_events_and_author(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    curator = Curator(parse({}), store)
    curator.handle(m.PostSeen(tagged("u1")))
    curator.handle(m.PostSeen(tagged("u2", m.Author("mastodon", "7", "carol@x", follows_bot=True))))
    store.set_last_edit("mastodon", "u1", "1", "2026-09-01T10:00:00+00:00")
    store.set_last_edit("mastodon", "u2", "7", "2026-09-01T10:00:00+00:00")
    store.set_last_edit("mastodon", "u2", "7", "2026-08-01T10:00:00+00:00")  # an older edit read late
    assert store.last_edit("mastodon", "u2") == "2026-09-01T10:00:00+00:00"
    assert store.forget("alice@home.test") == 1
    dump = json.dumps([list(store.db[t].rows) for t in ("items", "events", "authors", "intents")])
    assert "alice" not in dump and '"1"' not in dump.replace('"u1"', "")
    assert store.db["items"].count == 1
    assert store.last_edit("mastodon", "u1") is None, "her edits' record goes too"


def test_forget_leaves_only_a_suppression_and_no_bytes(tmp_path: Path) -> None:
    """Her answers' intents and ignored replies go too; "stop" survives as a bare suppression
    record; her text is in neither the database file nor the WAL afterwards."""
    path = tmp_path / "db.sqlite"
    store = Store(path)
    curator = Curator(parse({}), store)
    marker = "MARQUEUR-EFFACE-" + "x" * 5000  # long: overflow pages must be zeroed too
    [prompt] = curator.handle(m.PostSeen(tagged("u1")))
    store.intent_done(prompt, "p1 p1")
    carol = m.Author("mastodon", "7", "carol@x", follows_bot=True)
    [other] = curator.handle(m.PostSeen(tagged("u2", carol)))
    store.intent_done(other, "p2 p2")
    def reply(uri: str, text: str, parent: str) -> m.Post:
        return m.Post("mastodon", uri, uri, uri, ALICE, text, T0, reply_to=parent)
    curator.handle(m.PostSeen(reply("a1", f"aide {marker}", "p1")))  # a help reply intent
    curator.handle(m.PostSeen(reply("a2", f"{marker} 2", "p2")))  # not hers to answer: ignored
    curator.handle(m.PostSeen(reply("a3", "stop", "p1")))
    assert store.author_state("mastodon", "1").opted_out
    assert store.forget("alice@home.test") == 1
    dump = json.dumps([list(store.db[t].rows) for t in ("items", "events", "authors", "intents")])
    assert "alice" not in dump and "MARQUEUR" not in dump and '"a1"' not in dump and '"a2"' not in dump
    [kept] = store.db["suppressions"].rows
    assert {k: v for k, v in kept.items() if k != "erased_at"} == {
        "network": "mastodon", "account_id": "1", "opted_out": 1}
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("db.sqlite"))
    assert b"MARQUEUR" not in raw and b"alice@home" not in raw
    assert (tmp_path / "db.sqlite-wal").stat().st_size == 0
    # Her old posts, seen again on the network, leave no trace; a new one is recorded, never
    # prompted, never in a digest.
    events = store.db["events"].count
    assert curator.handle(m.PostSeen(reply("a1", f"aide {marker}", "p1"))) == []
    assert curator.handle(m.PostSeen(tagged("u1"))) == []
    assert store.db["events"].count == events and store.db["authors"].count == 1  # carol's
    new = replace(tagged("u3"), created_at=datetime.now(timezone.utc) + timedelta(seconds=1))
    assert curator.handle(m.PostSeen(new)) == []
    assert store.item("mastodon", "u3").state == "seen"  # type: ignore[union-attr]
    assert ("mastodon", "1") in store.digest_excluded_authors()


def test_secrets_never_reach_the_database(tmp_path: Path) -> None:
    cfg = parse({"mastodon": {"access_token": "SECRET-TOKEN-123"},
                 "bluesky": {"app_password": "pass-word-x"}})
    store = Store(tmp_path / "db.sqlite")
    Curator(cfg, store).handle(m.PostSeen(tagged()))
    raw = (tmp_path / "db.sqlite").read_bytes() + (tmp_path / "db.sqlite-wal").read_bytes()
    assert b"SECRET-TOKEN-123" not in raw and b"pass-word-x" not in raw


def test_items_are_read_in_pages_without_loss(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    curator = Curator(parse({"policy": {"prompt": "never"}}), store)
    for n in range(2500):
        curator.handle(m.PostSeen(tagged(f"u{n:04}")))
    uris = [row["uri"] for row in store.items()]
    assert len(uris) == 2500 and len(set(uris)) == 2500
