"""The site's store queries: the search index follows every write (insert, edit, erasure)."""

from __future__ import annotations

from test_digest_data import add, utc

from bot import model as m
from bot.store import Store


def uris(store: Store, q: str) -> list[str]:
    return [r["uri"] for r in store.search(q, 10)]


def test_search_index_follows_inserts_edits_and_erasure(tmp_path):
    store = Store(tmp_path / "s.db")
    post = add(store, 1, "mastodon", "ana@piaille.example", "La médiation numérique au quartier",
               utc(2026, 11, 23, 9), category="projet", link="https://a.example/x")
    assert uris(store, "MEDIATION") == uris(store, "quartiers") == [post.uri]
    edited = m.Post(**{**post.__dict__, "text": "Un atelier de code"})
    store.apply(m.PostEdited(edited), [m.Record(edited, "classified", "projet")])
    assert uris(store, "médiation") == [] and uris(store, "atelier") == [post.uri]
    # A state change does not touch the index, and the item is still found.
    store.apply(m.ModeratorDecision("mastodon", post.uri, "contexte", "t"),
                [m.Classify("mastodon", post.uri, "contexte", "t")])
    assert uris(store, "atelier") == [post.uri] and uris(store, "ana") == [post.uri]
    assert store.forget("ana@piaille.example") == 1
    assert uris(store, "atelier") == []
    assert store.db.execute("SELECT count(*) FROM items_fts").fetchone()[0] == 0


def test_the_search_migration_can_run_again(tmp_path):
    """sqlite-utils commits as it goes: a crash inside the migration leaves it half done; run
    again, it ends in the same index."""
    from bot.store import _search_index

    store = Store(tmp_path / "s.db")
    post = add(store, 1, "bluesky", "bo.bsky.social", "Une ressource", utc(2026, 11, 23, 9))
    _search_index(store.db)
    _search_index(store.db)
    assert uris(store, "ressource") == [post.uri]
    names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"items_ai", "items_ad", "items_au"} <= names
