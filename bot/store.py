"""The SQLite store: the only module that writes SQL.

Unique keys make every write idempotent (the same post seen twice, or after a restart, is one row;
an effect is one intent), WAL lets readers (stats, export, Datasette) run beside the bot, and
migrations are recorded in `_migrations` and applied on open. Secrets never come here.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import sqlite_utils

from bot import model as m
from bot.bridges import bridged_author, original_authors, other
from bot.store_web import FTS_COLUMNS, WebQueries

log = logging.getLogger("numpolville.store")

# A migration is SQL statements, or a function of the database for what sqlite-utils builds.
Migration = str | Callable[[sqlite_utils.Database], None]


def _search_index(db: sqlite_utils.Database) -> None:
    """Full-text search over what a person looks for (the site's /search): accents and case
    ignored ("mediation" finds "médiation"), plurals and endings too (the Porter stemmer over
    unicode61: "quartier" finds "quartiers"; a prefix query instead reads every match of a
    common word, for a tenth of a second), built and filled by sqlite-utils. Kept in step by
    triggers; the update trigger fires only when a searched column changes, so the state and
    intent bookkeeping, and a post seen again, never rewrite the index. `replace` makes it safe
    to run again after a crash in the middle (sqlite-utils commits as it goes)."""
    db.table("items").enable_fts(FTS_COLUMNS, tokenize="porter unicode61 remove_diacritics 2", replace=True)
    cols = ", ".join(FTS_COLUMNS)
    new, old = (", ".join(f"{p}.{c}" for c in FTS_COLUMNS) for p in ("new", "old"))
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in FTS_COLUMNS)
    delete = f"INSERT INTO items_fts (items_fts, rowid, {cols}) VALUES ('delete', old.rowid, {old});"
    insert = f"INSERT INTO items_fts (rowid, {cols}) VALUES (new.rowid, {new});"
    db.executescript(f"""
        CREATE TRIGGER IF NOT EXISTS items_ai AFTER INSERT ON items BEGIN {insert} END;
        CREATE TRIGGER IF NOT EXISTS items_ad AFTER DELETE ON items BEGIN {delete} END;
        CREATE TRIGGER IF NOT EXISTS items_au AFTER UPDATE OF {cols} ON items WHEN {changed}
            BEGIN {delete} {insert} END;
    """)


SCHEMA: list[Migration] = [
    # 1: the first schema
    """
    CREATE TABLE items (
        network TEXT NOT NULL, uri TEXT NOT NULL, ref TEXT NOT NULL, url TEXT,
        author_id TEXT NOT NULL, author_handle TEXT NOT NULL, text TEXT,
        link TEXT, link_title TEXT, created_at TEXT, visibility TEXT NOT NULL,
        state TEXT NOT NULL, category TEXT, classified_by TEXT, classified_at TEXT,
        boosted_at TEXT, boost_ref TEXT, prompt_uri TEXT, prompt_ref TEXT, prompted_at TEXT,
        deleted INTEGER NOT NULL DEFAULT 0, unknown_replies INTEGER NOT NULL DEFAULT 0,
        reason TEXT, seen_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (network, uri)
    );
    CREATE INDEX items_prompt ON items (network, prompt_uri);
    CREATE INDEX items_state ON items (state, prompted_at);
    CREATE INDEX items_created ON items (created_at);
    CREATE INDEX items_author ON items (network, author_id);
    CREATE TABLE authors (
        network TEXT NOT NULL, id TEXT NOT NULL, handle TEXT NOT NULL,
        follows_bot INTEGER, opted_out INTEGER NOT NULL DEFAULT 0, nobot INTEGER NOT NULL DEFAULT 0,
        labels TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (network, id)
    );
    CREATE TABLE cursors (
        network TEXT NOT NULL, source TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (network, source)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, network TEXT, uri TEXT,
        author_id TEXT, action TEXT NOT NULL, reason TEXT, detail TEXT
    );
    CREATE INDEX events_uri ON events (network, uri);
    CREATE TABLE intents (
        key TEXT PRIMARY KEY, network TEXT NOT NULL, kind TEXT NOT NULL, uri TEXT,
        payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT, error TEXT, created_at TEXT NOT NULL, done_at TEXT
    );
    CREATE INDEX intents_state ON intents (state);
    CREATE TABLE digests (
        period TEXT NOT NULL, network TEXT NOT NULL, state TEXT NOT NULL, refs TEXT,
        published_at TEXT, PRIMARY KEY (period, network)
    );
    """,
    # 2: health of each source, for `numpolville status`
    """
    CREATE TABLE sources (
        network TEXT NOT NULL, name TEXT NOT NULL, mode TEXT, state TEXT NOT NULL,
        started_at TEXT, last_event_at TEXT, reconnects INTEGER NOT NULL DEFAULT 0,
        error TEXT, failing_since TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (network, name)
    );
    """,
    # 3: the digest's history (counts of the 7 previous periods) read from the index alone
    """
    CREATE INDEX items_digest ON items (created_at, state, visibility, deleted, network, author_id,
                                        category, link);
    """,
    # 4: what each home server is and can do, why a source polls, and what became of a boost
    """
    CREATE TABLE servers (
        network TEXT NOT NULL, base_url TEXT NOT NULL, info TEXT NOT NULL, probed_at TEXT NOT NULL,
        PRIMARY KEY (network)
    );
    ALTER TABLE sources ADD COLUMN reason TEXT;
    ALTER TABLE sources ADD COLUMN missed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE items ADD COLUMN boost_note TEXT;
    """,
    # 5 (issue 16): Bluesky custom feeds. A page seeks (created_at, uri) in an index of the classified
    # Bluesky posts alone (per category, and all of them); the published generator records.
    """
    CREATE INDEX items_feed ON items (category, created_at, uri)
        WHERE network = 'bluesky' AND state = 'classified';
    CREATE INDEX items_feed_all ON items (created_at, uri)
        WHERE network = 'bluesky' AND state = 'classified';
    CREATE TABLE feed_generators (
        rkey TEXT PRIMARY KEY, uri TEXT NOT NULL UNIQUE, cid TEXT, published_at TEXT NOT NULL
    );
    """,
    # 6 (issue 13): bot accounts; one help reply per item; what an erasure keeps of a person
    # (network, account id, opted out, when: no text, no handle): her posts from before are never
    # stored again, and if she had said "stop" she is never prompted again
    """
    ALTER TABLE authors ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE items ADD COLUMN help_replies INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE suppressions (
        network TEXT NOT NULL, account_id TEXT NOT NULL, opted_out INTEGER NOT NULL DEFAULT 0,
        erased_at TEXT NOT NULL, PRIMARY KEY (network, account_id)
    );
    """,
    # 7 (issue 14): the site's full-text search
    _search_index,
    # 8 (issue 14): the site and the moderation desk: blocked authors, moderators' accounts (an
    # argon2 hash, never a password), category pages and feeds newest first, the last change
    # (feeds' Last-Modified)
    """
    ALTER TABLE authors ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE moderators (
        name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE INDEX items_classified ON items (category, created_at) WHERE state = 'classified';
    CREATE INDEX items_updated ON items (updated_at);
    CREATE INDEX authors_updated ON authors (updated_at);
    CREATE INDEX events_action ON events (action, id);
    """,
    # 9 (issue 15): whose post an item replies to, so that a comment is never boosted
    """
    ALTER TABLE items ADD COLUMN reply_to_author TEXT;
    """,
    # 10 (issue 15): bridged pairs. What a Bridgy Fed copy names of its original, the twin an
    # item goes by, and the lookups that find one half from the other (by uri or URL)
    """
    ALTER TABLE items ADD COLUMN bridged_from TEXT;
    ALTER TABLE items ADD COLUMN same_as TEXT;
    CREATE INDEX items_bridged_from ON items (network, bridged_from) WHERE bridged_from IS NOT NULL;
    CREATE INDEX items_same_as ON items (network, same_as) WHERE same_as IS NOT NULL;
    CREATE INDEX items_url ON items (network, url);
    DROP INDEX items_feed;
    DROP INDEX items_feed_all;
    CREATE INDEX items_feed ON items (category, created_at, uri)
        WHERE network = 'bluesky' AND state IN ('classified', 'bridged') AND category IS NOT NULL;
    CREATE INDEX items_feed_all ON items (created_at, uri)
        WHERE network = 'bluesky' AND state IN ('classified', 'bridged') AND category IS NOT NULL;
    """,
    # 11 (issue 15): the newest edit the bot has read of each status (an item or not), so that the
    # Mastodon poll re-reading the newest page of the tag timeline hands each edit on once; the
    # author's id so that `forget` takes it too
    """
    CREATE TABLE edits_seen (
        network TEXT NOT NULL, uri TEXT NOT NULL, author_id TEXT NOT NULL,
        edited_at TEXT NOT NULL, PRIMARY KEY (network, uri)
    );
    """,
]
# The Bluesky items a custom feed lists (the partial indexes of migration 10 say the same).
_FEED_STATES = "state IN ('classified', 'bridged') AND category IS NOT NULL"
CHECKPOINT_TRIES = 50  # a truncating checkpoint waits for readers; tried this many times, 0.1 s apart


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Intent:
    """A network effect written down before it is attempted: done at most once, never lost."""

    key: str
    network: m.Network
    action: m.Action
    attempts: int


class Store(WebQueries):
    def __init__(self, path: str | Path, *, clock: Any = now) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.clock = clock
        # One connection shared by the bot's threads: the lock keeps a transaction from
        # swallowing another thread's statements.
        self.lock = threading.RLock()
        self._excluded: tuple[tuple[int, int], str, str] | None = None  # see `_digest_args`
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        # Deleted rows are overwritten with zeros, not left in free space: an erasure (`forget`)
        # must take the bytes off the disk.
        conn.execute("PRAGMA secure_delete=ON")
        self._migrate()

    # ---- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        conn = self.db.conn
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in conn.execute("SELECT version FROM _migrations")}
        for version, sql in enumerate(SCHEMA, start=1):
            if version in done:
                continue
            if callable(sql):  # commits as it goes: written so that running it again is safe
                with self.lock:
                    sql(self.db)
            with self.transaction():
                for statement in filter(str.strip, sql.split(";") if isinstance(sql, str) else []):
                    conn.execute(statement)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (version, iso(self.clock())))

    def version(self) -> tuple[int, int]:
        """Changes when the database does: a write on this connection moves `total_changes`, one
        on another connection (another process) moves `data_version`. For caches of reads."""
        with self.lock:
            return self._exec("PRAGMA data_version").fetchone()[0], self.db.conn.total_changes

    def schema_version(self) -> int:
        return self._exec("SELECT max(version) FROM _migrations").fetchone()[0] or 0

    def transaction(self) -> _Transaction:
        return _Transaction(self.db.conn, self.lock)

    def _exec(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.db.conn.execute(sql, args)

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the database file and
        removes it). Under the lock: a thread still writing finishes first."""
        with self.lock:
            self.db.conn.close()
        log.info("database %s closed", self.path)

    # ---- reading what the core needs ------------------------------------------------------------

    def item(self, network: str, uri: str) -> m.Item | None:
        row = self._one("SELECT * FROM items WHERE network = ? AND uri = ?", network, uri)
        return _item(row) if row else None

    def item_by_prompt(self, network: str, prompt_uri: str) -> m.Item | None:
        row = self._one("SELECT * FROM items WHERE network = ? AND prompt_uri = ?", network, prompt_uri)
        return _item(row) if row else None

    def item_by_prompt_ref(self, network: str, prompt_ref: str) -> m.Item | None:
        """The item whose prompt has this network-local ref (Mastodon replies name the parent by
        its local id, not its uri)."""
        row = self._one("SELECT * FROM items WHERE network = ? AND prompt_ref = ?", network, prompt_ref)
        return _item(row) if row else None

    def author_state(self, network: str, author_id: str) -> m.AuthorState:
        """Opted out (in her profile, or in the suppression record an erasure left), blocked by a
        moderator, and how many prompts she had in the last 24 hours."""
        opted_out, erased_at, blocked = self._exec(
            "SELECT EXISTS (SELECT 1 FROM authors WHERE network = ?1 AND id = ?2 AND opted_out) "
            "OR coalesce(s.opted_out, 0), s.erased_at, "
            "EXISTS (SELECT 1 FROM authors WHERE network = ?1 AND id = ?2 AND blocked) FROM (SELECT 1) "
            "LEFT JOIN suppressions s ON s.network = ?1 AND s.account_id = ?2",
            (network, author_id)).fetchone()
        since = iso(self.clock() - timedelta(days=1))
        count = self._exec(
            "SELECT count(*) FROM items WHERE network = ? AND author_id = ? AND prompted_at >= ?",
            (network, author_id, since)).fetchone()[0]
        return m.AuthorState(opted_out=bool(opted_out), prompts_today=count,
                             erased_at=datetime.fromisoformat(erased_at) if erased_at else None,
                             blocked=bool(blocked))

    def context(self, event: m.Event, bot_ids: frozenset[str]) -> m.Context:
        if isinstance(event, (m.PostSeen, m.PostEdited, m.PostImported)):
            post = event.post
            item = self.item(post.network, post.uri)
            prompted = self.item_by_prompt(post.network, post.reply_to) if post.reply_to else None
            twin = self.twin(prompted) if prompted else self.twin(item) if item else self.post_twin(post)
            return m.Context(item=item, prompted_item=prompted,
                             author=self.author_state(post.network, post.author.id),
                             bot_ids=bot_ids, twin=twin)
        if isinstance(event, m.BridgeWaitOver):
            item = self.item(event.network, event.uri)
            author = self.author_state(item.network, item.author_id) if item else m.AuthorState()
            return m.Context(item=item, author=author, bot_ids=bot_ids)
        if isinstance(event, m.ModeratorBlock):
            boosted = self._all("SELECT * FROM items WHERE network = ? AND author_id = ? "
                                "AND boosted_at IS NOT NULL", event.network, event.author_id)
            return m.Context(author=self.author_state(event.network, event.author_id), bot_ids=bot_ids,
                             boosted_items=tuple(map(_item, boosted)))
        item = self.item(event.network, event.uri)
        return m.Context(item=item, bot_ids=bot_ids, twin=self.twin(item) if item else None)

    def twin(self, item: m.Item) -> m.Item | None:
        """The other half of a recorded item's bridged pair: the twin it goes by, or the one
        that goes by it."""
        network = other(item.network)
        if item.same_as is not None:
            return self.item(network, item.same_as)
        row = self._one("SELECT * FROM items WHERE network = ? AND same_as = ?", network, item.uri)
        return _item(row) if row else None

    def post_twin(self, post: m.Post) -> m.Item | None:
        """The recorded half of a new post's bridged pair. For a copy: its original, by the uri,
        URL or ActivityPub id it names, else (a copy that names none) by its author's other
        handle and the same second (Bridgy Fed keeps the original's time). For an original: a
        copy recorded first that names it, or an unnamed one by its author's bridged account."""
        network, created = other(post.network), iso(post.created_at)
        if post.bridged_from:
            row = self._one("SELECT * FROM items WHERE network = ?1 AND uri = ?2 UNION ALL "
                            "SELECT * FROM items WHERE network = ?1 AND url = ?2 LIMIT 1",
                            network, post.bridged_from)
        elif post.bridged_from == "":
            row = self._one(
                "SELECT * FROM items INDEXED BY items_created WHERE network = ? AND created_at = ? "
                "AND author_handle COLLATE NOCASE IN (SELECT value FROM json_each(?))", network, created,
                json.dumps(original_authors(post.network, post.author.handle)))
        else:
            row = self._one("SELECT * FROM items WHERE network = ? AND bridged_from IN (?, ?)",
                            network, post.uri, post.url) or self._one(
                "SELECT * FROM items WHERE network = ? AND created_at = ? AND bridged_from = '' "
                "AND author_handle LIKE ?", network, created,
                bridged_author(post.network, post.author.handle))
        return _item(row) if row else None

    # ---- applying what the core decided ---------------------------------------------------------

    def apply(self, event: m.Event, actions: Iterable[m.Action]) -> list[Intent]:
        """Store the actions in one transaction; return the new network effects to carry out."""
        at = iso(self.clock())
        intents: list[Intent] = []
        post = event.post if isinstance(event, (m.PostSeen, m.PostEdited, m.PostImported)) else None
        if any(isinstance(a, m.Unseen) for a in actions):
            return []  # an erased author's old post: not even her profile is written back
        with self.transaction():
            if post:
                self._upsert_author(post.author, at)
            if isinstance(event, m.DECISIONS):
                self._log_decision(event, at)
            for action in actions:
                # An action on the event's post (an ignored answer too) is logged with its
                # author, so that `forget` finds every trace of her.
                author = post.author.id if post and _describe(action)[1] == post.uri else None
                intent = self._apply_one(action, at, author)
                if intent:
                    intents.append(intent)
        return intents

    def _apply_one(self, a: m.Action, at: str, author: str | None = None) -> Intent | None:
        if isinstance(a, m.Record):
            self._record(a, at)
        elif isinstance(a, m.Classify):
            self._update(a.network, a.uri, at, state="classified", category=a.category,
                         classified_by=a.by, classified_at=at)
        elif isinstance(a, m.SetState):
            self._update(a.network, a.uri, at, state=a.state, reason=a.reason,
                         deleted=int(a.state == "deleted"))
        elif isinstance(a, m.Link):
            self._update(a.network, a.uri, at, state="bridged", same_as=a.same_as,
                         category=a.category, reason=a.reason)
        elif isinstance(a, m.DropPrompt):
            self._exec("DELETE FROM intents WHERE key = ? AND state = 'held'", (_prompt_key(a),))
        elif isinstance(a, m.NoteReply):
            column = "help_replies" if a.text_key == "help" else "unknown_replies"
            self._exec(f"UPDATE items SET {column} = {column} + 1 WHERE network = ? AND uri = ?",
                       (a.network, a.uri))
        elif isinstance(a, m.OptOut):
            self._exec("UPDATE authors SET opted_out = 1, updated_at = ? WHERE network = ? AND id = ?",
                       (at, a.network, a.author_id))
        elif isinstance(a, m.SetBlocked):
            self._exec(
                "INSERT INTO authors (network, id, handle, blocked, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (network, id) DO UPDATE SET blocked = excluded.blocked, "
                "updated_at = excluded.updated_at", (a.network, a.author_id, a.handle, int(a.blocked), at))
        self.log(a, at, author)
        if isinstance(a, m.ReleasePrompt):
            return self._release(a, at)
        return self._intend(a, at) if isinstance(a, m.EFFECTS) else None

    def _release(self, a: m.ReleasePrompt, at: str) -> Intent | None:
        """A held prompt becomes an effect to carry out, and its item is prompted from now on."""
        key = _prompt_key(a)
        row = self._one("SELECT payload, attempts FROM intents WHERE key = ? AND state = 'held'", key)
        if row is None:  # nothing to release: the copy stops waiting all the same
            self._update(a.network, a.uri, at, state="seen", reason="no held prompt was left to release")
            return None
        self._exec("UPDATE intents SET state = 'pending' WHERE key = ?", (key,))
        self._update(a.network, a.uri, at, state="prompted", prompted_at=at,
                     reason="its original did not come: asking the copy's author")
        return Intent(key, a.network, m.from_dict(json.loads(row["payload"])), row["attempts"])

    def _record(self, a: m.Record, at: str) -> None:
        p = a.post
        row = {
            "network": p.network, "uri": p.uri, "ref": p.ref, "url": p.url,
            "author_id": p.author.id, "author_handle": p.author.handle, "text": p.text,
            "link": p.link, "link_title": p.link_title, "created_at": iso(p.created_at),
            "visibility": p.visibility, "state": a.state, "category": a.category,
            "reason": a.reason, "reply_to_author": p.reply_to_author,
            "bridged_from": p.bridged_from, "updated_at": at,
        }
        if a.same_as:
            row |= {"same_as": a.same_as}
        if a.classified_by:
            row |= {"classified_by": a.classified_by, "classified_at": at}
        if a.state == "prompted":  # counts toward the daily limit from the decision on
            row |= {"prompted_at": at}
        cols = ", ".join(row)
        # an edit re-records the item: its prompt keeps the time it was made at
        updates = ", ".join(f"{k} = coalesce(prompted_at, excluded.{k})" if k == "prompted_at"
                            else f"{k} = excluded.{k}" for k in row if k not in ("network", "uri"))
        self._exec(
            f"INSERT INTO items ({cols}, seen_at) VALUES ({', '.join('?' * len(row))}, ?) "
            f"ON CONFLICT (network, uri) DO UPDATE SET {updates}", (*row.values(), at))

    def _update(self, network: str, uri: str, at: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self._exec(f"UPDATE items SET {sets}, updated_at = ? WHERE network = ? AND uri = ?",
                             (*values.values(), at, network, uri))

    def _upsert_author(self, a: m.Author, at: str) -> None:
        self._exec(
            "INSERT INTO authors (network, id, handle, follows_bot, nobot, labels, bot, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (network, id) DO UPDATE SET "
            "handle = excluded.handle, follows_bot = coalesce(excluded.follows_bot, follows_bot), "
            "nobot = excluded.nobot, labels = excluded.labels, bot = excluded.bot, "
            "updated_at = excluded.updated_at",
            (a.network, a.id, a.handle, a.follows_bot, int(a.refuses_bots()),
             json.dumps(list(a.labels)), int(a.is_bot()), at))

    def log(self, a: m.Action, at: str | None = None, author: str | None = None) -> None:
        """Append to the event log: what the bot did and why (no post text, no secrets); `author`
        when the action itself names none (an ignored answer)."""
        network, uri, described, reason = _describe(a)
        self._exec(
            "INSERT INTO events (at, network, uri, author_id, action, reason) VALUES (?, ?, ?, ?, ?, ?)",
            (at or iso(self.clock()), network, uri, described or author, type(a).__name__.lower(),
             reason))

    # ---- intents: exactly-once effects ----------------------------------------------------------

    def _intend(self, a: m.Action, at: str) -> Intent | None:
        """Write the effect down once; a held prompt waits (state `held`) for its release."""
        key = intent_key(a)
        network, uri, _, _ = _describe(a)
        held = isinstance(a, m.Prompt) and a.held
        cur = self._exec(
            "INSERT OR IGNORE INTO intents (key, network, kind, uri, payload, state, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, network, type(a).__name__.lower(), uri, json.dumps(m.to_dict(a)),
             "held" if held else "pending", at))
        return Intent(key, network, a, 0) if cur.rowcount and not held else None  # type: ignore[arg-type]

    def pending_intents(self, network: str) -> list[Intent]:
        rows = self._exec(
            "SELECT key, network, payload, attempts FROM intents WHERE state = 'pending' "
            "AND network = ? ORDER BY created_at, rowid", (network,)).fetchall()
        return [Intent(k, n, m.from_dict(json.loads(p)), att) for k, n, p, att in rows]

    def intent_done(self, intent: Intent, result: str | None = None) -> None:
        """Mark the effect done and remember what it produced (the prompt's uri, the boost)."""
        at = iso(self.clock())
        a = intent.action
        with self.transaction():
            self._exec("UPDATE intents SET state = 'done', result = ?, done_at = ?, "
                                 "attempts = attempts + 1 WHERE key = ?", (result, at, intent.key))
            if isinstance(a, m.Prompt) and result:
                uri, _, ref = result.partition(" ")
                self._update(a.post.network, a.post.uri, at, prompt_uri=uri, prompt_ref=ref or uri)
            elif isinstance(a, m.Boost):
                self._update(a.network, a.uri, at, boosted_at=at, boost_ref=result)
                # A later unboost (withdrawn again after a restore) must be possible again; one
                # still pending (a withdrawal while this boost was under way) stays.
                self._exec("DELETE FROM intents WHERE key = ? AND state != 'pending'", (intent_key(
                    m.Unboost(a.network, a.uri, a.ref)),))
            elif isinstance(a, m.Unboost):
                self._update(a.network, a.uri, at, boosted_at=None, boost_ref=None)
                # A later boost of the same item (a correction) must be possible again.
                self._exec("DELETE FROM intents WHERE key = ?", (intent_key(
                    m.Boost(a.network, a.uri, a.ref)),))

    def prompt_found(self, network: str, uri: str, prompt_uri: str, prompt_ref: str) -> None:
        """The item's prompt, found on the server before its intent was marked done (an answer
        came first); the intent, completed later, writes the same values."""
        self._exec("UPDATE items SET prompt_uri = ?, prompt_ref = ?, updated_at = ? WHERE network = ? "
                   "AND uri = ? AND prompt_uri IS NULL",
                   (prompt_uri, prompt_ref, iso(self.clock()), network, uri))

    def intent_failed(self, intent: Intent, error: str, *, final: bool) -> None:
        """Count a failed attempt; a final failure (the post is gone) stops retries."""
        self._exec(
            "UPDATE intents SET attempts = attempts + 1, error = ?, state = ? WHERE key = ?",
            (error[:500], "failed" if final else "pending", intent.key))

    def boost_ref(self, network: str, uri: str) -> str | None:
        row = self._one("SELECT boost_ref FROM items WHERE network = ? AND uri = ?", network, uri)
        return row["boost_ref"] if row else None

    def prompt_ref(self, network: str, uri: str) -> str | None:
        row = self._one("SELECT prompt_ref FROM items WHERE network = ? AND uri = ?", network, uri)
        return row["prompt_ref"] if row else None

    # ---- cursors --------------------------------------------------------------------------------

    def cursor(self, network: str, source: str) -> str | None:
        row = self._one("SELECT value FROM cursors WHERE network = ? AND source = ?", network, source)
        return row["value"] if row else None

    def set_cursor(self, network: str, source: str, value: str) -> None:
        self._exec(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (network, source) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (network, source, value, iso(self.clock())))

    # ---- edits ----------------------------------------------------------------------------------

    def last_edit(self, network: str, uri: str) -> str | None:
        """When the newest edit the bot has read of a post was made (UTC ISO time), if any."""
        row = self._one("SELECT edited_at FROM edits_seen WHERE network = ? AND uri = ?", network, uri)
        return row["edited_at"] if row else None

    def set_last_edit(self, network: str, uri: str, author_id: str, edited_at: str) -> None:
        self._exec(
            "INSERT INTO edits_seen VALUES (?, ?, ?, ?) ON CONFLICT (network, uri) "
            "DO UPDATE SET edited_at = max(edited_at, excluded.edited_at)",
            (network, uri, author_id, edited_at))

    def open_public_items(self, network: str, created_since: str | None) -> list[m.Item]:
        """The public items still counted (neither withdrawn nor deleted) of posts written at or
        after `created_since` (all when None): what a public timeline of that span should show."""
        rows = self._all(
            "SELECT * FROM items WHERE network = ? AND visibility = 'public' AND state NOT IN "
            "('withdrawn', 'deleted') AND created_at >= ?", network, created_since or "")
        return [_item(row) for row in rows]

    # ---- queries for the shell and the CLI ------------------------------------------------------

    def copies_waited(self, seconds: float) -> list[tuple[str, str]]:
        """(network, uri) of the bridged copies that have waited `seconds` for their original."""
        cutoff = iso(self.clock() - timedelta(seconds=seconds))
        rows = self._exec("SELECT network, uri FROM items WHERE state = 'waiting' AND seen_at <= ?",
                          (cutoff,))
        return [(n, u) for n, u in rows]

    def prompts_older_than(self, hours: float) -> list[tuple[str, str]]:
        cutoff = iso(self.clock() - timedelta(hours=hours))
        rows = self._exec(
            "SELECT network, uri FROM items WHERE state = 'prompted' AND prompted_at < ?", (cutoff,))
        return [(n, u) for n, u in rows]

    def items(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[dict[str, Any]]:
        sql, args = "SELECT * FROM items WHERE 1", list[str]()
        if since:
            sql, args = sql + " AND created_at >= ?", [*args, iso(since)]
        if until:
            sql, args = sql + " AND created_at < ?", [*args, iso(until)]
        sql += " ORDER BY created_at, network, uri LIMIT 1000 OFFSET ?"
        for offset in itertools.count(0, 1000):  # pages: the lock is never held across a yield
            page = self._all(sql, *args, offset)
            yield from page
            if len(page) < 1000:
                return

    def stats(self) -> list[dict[str, Any]]:
        return self._all(
            "SELECT network, coalesce(category, '') AS category, state, count(*) AS items, "
            "sum(boosted_at IS NOT NULL) AS boosted FROM items GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")

    def forget(self, author: str) -> int:
        """Erase an author (a data-protection request): her items, her profile, every event and
        intent about her or her posts (her answers included). What stays is a suppression record
        (network, account id, opted out, when: no text, no handle): her posts from before, seen
        again on the network, are never stored again, and if she had said "stop" she is never
        prompted again. The erased bytes leave the disk: `secure_delete` zeroes them in the
        database file, then a truncating checkpoint empties the WAL that still held them.
        Returns the number of items erased."""
        handle = author.lstrip("@")
        with self.transaction():
            ids = self._exec(
                "SELECT network, id FROM authors WHERE handle = ? OR id = ? "
                "UNION SELECT network, author_id FROM items WHERE author_handle = ? OR author_id = ?",
                (handle, handle, handle, handle)).fetchall()
            count = 0
            for network, author_id in ids:
                self._exec(
                    "INSERT INTO suppressions (network, account_id, opted_out, erased_at) "
                    "VALUES (?1, ?2, coalesce((SELECT opted_out FROM authors WHERE network = ?1 "
                    "AND id = ?2), 0), ?3) ON CONFLICT (network, account_id) DO UPDATE SET "
                    "opted_out = max(opted_out, excluded.opted_out), erased_at = excluded.erased_at",
                    (network, author_id, self.clock().astimezone(timezone.utc).isoformat()))
                for sql in (
                        "DELETE FROM {} WHERE network = ?1 AND uri IN "
                        "(SELECT uri FROM items WHERE network = ?1 AND author_id = ?2)",
                        "DELETE FROM {} WHERE network = ?1 AND uri IN "
                        "(SELECT uri FROM events WHERE network = ?1 AND author_id = ?2 AND uri != '')"):
                    for table in ("events", "intents"):
                        self._exec(sql.format(table), (network, author_id))
                self._exec("DELETE FROM intents WHERE network = ? "
                           "AND json_extract(payload, '$.post.author.id') = ?", (network, author_id))
                self._exec("DELETE FROM events WHERE network = ? AND author_id = ?", (network, author_id))
                self._exec("DELETE FROM edits_seen WHERE network = ? AND author_id = ?", (network, author_id))
                count += self._exec("DELETE FROM items WHERE network = ? AND author_id = ?",
                                    (network, author_id)).rowcount
                self._exec("DELETE FROM authors WHERE network = ? AND id = ?", (network, author_id))
        if not self.truncate_wal():
            log.warning("the WAL could not be emptied (a reader kept it busy): the erased rows may "
                        "stay in %s-wal until the bot's next checkpoint", self.path)
        return count

    def truncate_wal(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes, so the frames written
        before a deletion are gone. It waits for readers of older frames (the running bot, an
        export): tried for a few seconds; False if a reader kept it from finishing."""
        for _ in range(CHECKPOINT_TRIES):
            with self.lock:
                busy = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            time.sleep(0.1)
        return False

    def find_item(self, uri_or_url: str) -> m.Item | None:
        row = self._one("SELECT * FROM items WHERE uri = ? OR url = ? OR ref = ?",
                        uri_or_url, uri_or_url, uri_or_url)
        return _item(row) if row else None

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        with self.lock:
            return next(self.db.query(sql, args), None)

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.db.query(sql, args))

    # ---- health ---------------------------------------------------------------------------------

    def source_started(self, network: str, name: str, mode: str, *, restart: bool) -> None:
        at = iso(self.clock())
        self._exec(
            "INSERT INTO sources (network, name, mode, state, started_at, updated_at) "
            "VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT (network, name) DO UPDATE SET "
            "mode = excluded.mode, state = 'running', started_at = excluded.started_at, "
            "updated_at = excluded.updated_at, reconnects = reconnects + ?",
            (network, name, mode, at, at, int(restart)))

    def source_failed(self, network: str, name: str, error: str) -> None:
        at = iso(self.clock())
        self._exec(
            "UPDATE sources SET state = 'failing', error = ?, updated_at = ?, "
            "failing_since = coalesce(failing_since, ?) WHERE network = ? AND name = ?",
            (error[:300], at, at, network, name))

    def source_alive(self, network: str, name: str, mode: str, *, event: bool = False,
                     reason: str | None = None, missed: int | None = None) -> None:
        """A heartbeat (with the source's current mode, and why it polls if it could stream),
        and with `event` the time of the last event the source delivered."""
        at = iso(self.clock())
        self._exec(
            "UPDATE sources SET updated_at = ?, mode = ?, "
            "last_event_at = CASE WHEN ? THEN ? ELSE last_event_at END, "
            "reason = coalesce(?, reason), missed = coalesce(?, missed), "
            "failing_since = CASE WHEN state = 'running' THEN NULL ELSE failing_since END "
            "WHERE network = ? AND name = ?", (at, mode, event, at, reason, missed, network, name))

    def source_stopped(self, network: str, name: str) -> None:
        self._exec("UPDATE sources SET state = 'stopped', updated_at = ? WHERE network = ? "
                             "AND name = ?", (iso(self.clock()), network, name))

    def set_server(self, network: str, base_url: str, info: dict[str, Any]) -> None:
        """What the home server said it is and can do, for `status` and `doctor`."""
        self._exec("INSERT INTO servers VALUES (?, ?, ?, ?) ON CONFLICT (network) DO UPDATE SET "
                   "base_url = excluded.base_url, info = excluded.info, probed_at = excluded.probed_at",
                   (network, base_url, json.dumps(info), iso(self.clock())))

    def servers(self) -> list[dict[str, Any]]:
        return [{**row, "info": json.loads(row["info"])}
                for row in self._all("SELECT * FROM servers ORDER BY network")]

    def boost_note(self, network: str, uri: str, note: str) -> None:
        """What became of a boost that did not simply happen (awaiting approval, refused)."""
        self._update(network, uri, iso(self.clock()), boost_note=note[:200])

    def health(self) -> dict[str, Any]:
        """What `numpolville status` shows: sources, pending intents, prompts waiting."""
        one = self._exec
        return {
            "sources": self._all("SELECT * FROM sources ORDER BY network, name"),
            "servers": self.servers(),
            "boosts_awaiting_approval": one("SELECT count(*) FROM items WHERE boost_note LIKE "
                                            "'awaiting%'").fetchone()[0],
            "boosts_refused": one("SELECT count(*) FROM items WHERE boost_note LIKE 'refused%'")
            .fetchone()[0],
            "pending_intents": one("SELECT count(*) FROM intents WHERE state = 'pending'").fetchone()[0],
            "failed_intents": one("SELECT count(*) FROM intents WHERE state = 'failed'").fetchone()[0],
            "waiting": one("SELECT count(*) FROM items WHERE state = 'prompted'").fetchone()[0],
            "items": one("SELECT count(*) FROM items").fetchone()[0],
        }

    # ---- digests --------------------------------------------------------------------------------

    # What a digest, the site or a feed may show: nothing private, and nothing by an author of
    # `digest_excluded_authors`, passed as JSON arrays (?3 their ids, ?4 "network id": the cheap
    # test on the id alone spares the concatenation to almost every row); of the items, no
    # withdrawn, deleted or skipped one, and no half of a bridged pair listed through its twin
    # (nor a copy waiting for its original). ?1 and ?2 are the query's own. Every column a digest
    # reads is in the `items_digest` index, so the table itself is never read.
    _ALLOWED = ("NOT deleted AND visibility IN ('public', 'unlisted') "
                "AND NOT (author_id IN (SELECT value FROM json_each(?3)) "
                "AND network || ' ' || author_id IN (SELECT value FROM json_each(?4)))")
    _SHOWN = "state NOT IN ('withdrawn', 'deleted', 'skipped', 'waiting', 'bridged') AND " + _ALLOWED
    _DIGEST_SHOWN = "created_at >= ?1 AND created_at < ?2 AND " + _SHOWN
    # A share's vote for a category: its category once classified, else none.
    _DIGEST_VOTE = "CASE WHEN state = 'classified' THEN category END"
    _DIGEST_NETWORKS = get_args(m.Network)

    def digest_excluded_authors(self) -> set[tuple[str, str]]:
        """(network, id) of the authors whose posts never go into a digest, a page or a feed:
        opted out, #nobot (or #noindex, #noai) in their bio, labelled `!no-unauthenticated`, or
        blocked by a moderator."""
        rows = self._exec(
            "SELECT network, id, opted_out OR blocked, nobot, labels FROM authors WHERE opted_out "
            "OR nobot OR blocked OR (labels IS NOT NULL AND labels NOT IN ('', '[]')) "
            "UNION SELECT network, account_id, opted_out, 0, NULL FROM suppressions WHERE opted_out"
        ).fetchall()
        out = set()
        for network, id_, opted_out, nobot, labels in rows:
            if opted_out or nobot or "!no-unauthenticated" in (json.loads(labels) if labels else []):
                out.add((network, id_))
        return out

    def _digest_args(self, since: str, until: str) -> tuple[str, str, str, str]:
        """The parameters of `_DIGEST_SHOWN`. The excluded authors are read again only once the
        database has changed (`version`): a feed page costs no scan of the authors, and an opt-out
        still shows at once."""
        with self.lock:
            version = self.version()
            if self._excluded is None or self._excluded[0] != version:
                excluded = sorted(self.digest_excluded_authors())
                self._excluded = (version, json.dumps([a for _, a in excluded]),
                                  json.dumps([f"{n} {a}" for n, a in excluded]))
            return (since, until, self._excluded[1], self._excluded[2])

    def digest_shares(self, since: str, until: str) -> list[tuple[Any, ...]]:
        """What grouping and ranking the entries of a period needs, one row per item a digest may
        show, created in [since, until) (ISO UTC strings, as stored): (rowid, network, author_id,
        link, vote), oldest first."""
        return self._exec(
            f"SELECT rowid, network, author_id, link, {self._DIGEST_VOTE} FROM items "
            f"INDEXED BY items_digest WHERE {self._DIGEST_SHOWN} ORDER BY created_at",
            self._digest_args(since, until)).fetchall()

    def digest_links(self, bounds: list[str]) -> list[tuple[dict[str, int], list[Any], list[Any]]]:
        """What counting the entries of past periods needs, for each period [bounds[i],
        bounds[i + 1]): posts per network, and the link and vote of each item a digest may show
        (two aligned lists). Aggregated in SQL, one statement per period (a range of the index,
        no sort), and decoded from JSON arrays: far cheaper than one Python row per item."""
        args = self._digest_args(bounds[0], bounds[-1])
        sums = ", ".join(f"sum(network = '{n}')" for n in self._DIGEST_NETWORKS)
        sql = (f"SELECT {sums}, json_group_array(link), json_group_array({self._DIGEST_VOTE}) "
               f"FROM items INDEXED BY items_digest WHERE {self._DIGEST_SHOWN}")
        out = []
        for since, until in itertools.pairwise(bounds):
            *posts, links, votes = self._exec(sql, (since, until, *args[2:])).fetchone()
            out.append(({n: c or 0 for n, c in zip(self._DIGEST_NETWORKS, posts, strict=True)},
                        json.loads(links), json.loads(votes)))
        return out

    def digest_items(self, rowids: Iterable[int]) -> list[dict[str, Any]]:
        """The rows of the entries a digest lists (the few it shows in full), oldest first
        (then by network and uri, the order of an entry's sharers)."""
        return self._all(
            "SELECT rowid, network, uri, url, author_handle, text, link, link_title, created_at, "
            "state, category FROM items WHERE rowid IN (SELECT value FROM json_each(?)) "
            "ORDER BY created_at, network, uri", json.dumps(list(rowids)))

    # ---- Bluesky custom feeds -------------------------------------------------------------------

    # The posts a feed shows: Bluesky's classified ones that a digest may show, and the Bluesky
    # halves of classified bridged pairs (a Mastodon share reaches the feed through its copy),
    # newest first, from a (created_at, uri) position on. The window ?1..?2 ends just past the
    # position's second, so the index range starts there (a seek, whatever the depth); the row
    # value breaks the tie.
    _FEED_PAGE = ("SELECT created_at, uri FROM items INDEXED BY {index} WHERE network = 'bluesky' "
                  f"AND {_FEED_STATES} {{category}} AND created_at >= ?1 AND created_at < ?2 "
                  "AND " + _ALLOWED + " AND (created_at, uri) < (?5, ?6) "
                  "ORDER BY created_at DESC, uri DESC LIMIT ?7")
    _FEED_END = "\U0010ffff"  # after every stored string

    def feed_page(self, category: str | None, before: tuple[str, str] | None,
                  limit: int) -> list[tuple[str, str]]:
        """(created_at, uri) of up to `limit` posts of a feed (a category, or None for all of them),
        newest first, older than the position `before` (a previous page's last row)."""
        created_at, uri = before or (self._FEED_END, self._FEED_END)
        args: tuple[Any, ...] = (*self._digest_args("", created_at + self._FEED_END), created_at, uri, limit)
        if category is None:
            sql = self._FEED_PAGE.format(index="items_feed_all", category="")
        else:
            sql = self._FEED_PAGE.format(index="items_feed", category="AND category = ?8")
            args += (category,)
        return [(c, u) for c, u in self._exec(sql, args).fetchall()]

    def feed_generator_published(self, rkey: str, uri: str, cid: str | None) -> None:
        self._exec("INSERT INTO feed_generators VALUES (?, ?, ?, ?) ON CONFLICT (rkey) DO UPDATE SET "
                   "uri = excluded.uri, cid = excluded.cid, published_at = excluded.published_at",
                   (rkey, uri, cid, iso(self.clock())))

    def feed_generator_removed(self, rkey: str) -> None:
        self._exec("DELETE FROM feed_generators WHERE rkey = ?", (rkey,))

    def feed_generators(self) -> dict[str, str]:
        """rkey -> at:// URI of the published feed generator records."""
        return {k: u for k, u in self._exec("SELECT rkey, uri FROM feed_generators ORDER BY rkey")}

    def digest_state(self, period: str, network: str) -> str | None:
        row = self._one("SELECT state FROM digests WHERE period = ? AND network = ?", period, network)
        return row["state"] if row else None

    def digest_pending(self, period: str, network: str) -> str:
        """Write down the intent to publish (once: an existing row is kept). Returns its state."""
        with self.transaction():
            self._exec("INSERT OR IGNORE INTO digests (period, network, state) "
                                 "VALUES (?, ?, 'pending')", (period, network))
            return self.digest_state(period, network) or "pending"

    def digest_done(self, period: str, network: str, refs: list[str]) -> None:
        self._exec(
            "UPDATE digests SET state = 'done', refs = ?, published_at = ? WHERE period = ? AND network = ?",
            (json.dumps(refs), iso(self.clock()), period, network))

    def digests(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM digests ORDER BY period, network")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, nestable (inner blocks join the outer one)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self.conn, self.lock, self.outer = conn, lock, False

    def __enter__(self) -> None:
        self.lock.acquire()
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if self.outer:
                try:
                    if not exc_type:
                        self.conn.execute("COMMIT")
                finally:
                    # A failed COMMIT (disk full) leaves the transaction open, and SQLite may
                    # already have rolled back after a failed statement: end it either way.
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
        finally:
            self.lock.release()


def _prompt_key(a: m.ReleasePrompt | m.DropPrompt) -> str:
    """The key of the held prompt of a copy (`intent_key` of its Prompt)."""
    return _effect_key("prompt", a.network, a.uri)


def _effect_key(kind: str, network: str, uri: str) -> str:
    return f"{kind}:{network}:{uri}"


def intent_key(a: m.Action) -> str:
    """One key per effect that must happen once: a second attempt finds the first one's row."""
    network, uri, _, _ = _describe(a)
    if isinstance(a, (m.Acknowledge, m.Reply)):
        suffix = f":{a.text_key}" if isinstance(a, m.Reply) else ""
        return _effect_key(f"{type(a).__name__.lower()}{suffix}", network, a.post.uri)
    return _effect_key(type(a).__name__.lower(), network, uri)


def _describe(a: m.Action) -> tuple[str, str, str | None, str]:
    """(network, uri, author id, reason) of an action, for the log and the intents table."""
    if isinstance(a, (m.Record, m.Prompt, m.Acknowledge, m.Reply)):
        p = a.post
        reason = getattr(a, "reason", "") or getattr(a, "text_key", "") or type(a).__name__.lower()
        return p.network, p.uri, p.author.id, reason
    if isinstance(a, m.OptOut):
        return a.network, "", a.author_id, "the author asked not to be prompted again"
    if isinstance(a, m.SetBlocked):
        return a.network, "", a.author_id, f"{'blocked' if a.blocked else 'unblocked'} by {a.by}"
    if isinstance(a, m.Classify):
        return a.network, a.uri, None, f"{a.category} by {a.by}: {a.reason}"
    reason = getattr(a, "reason", "") or type(a).__name__.lower()
    return a.network, a.uri, None, reason


def _item(row: dict[str, Any]) -> m.Item:
    return m.Item(network=row["network"], uri=row["uri"], ref=row["ref"], author_id=row["author_id"],
                  author_handle=row["author_handle"], state=row["state"],
                  visibility=row["visibility"], category=row["category"],
                  prompt_uri=row["prompt_uri"], boosted=row["boosted_at"] is not None,
                  unknown_replies=row["unknown_replies"], help_replies=row["help_replies"],
                  reply_to_other=row["reply_to_author"] not in (None, row["author_id"]),
                  bridged_from=row["bridged_from"], same_as=row["same_as"])
