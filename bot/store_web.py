"""The store's queries for the web site and the moderation desk (bot/web/): part of `Store`,
kept in a file of its own so that bot/store.py stays readable. Still the only SQL of the site.

Every public query applies `Store._SHOWN`, the digest's own rule of what may be shown, so a page,
a feed and the weekly digest can never disagree on what is left out.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from typing import Any

import sqlite_utils

from bot import model as m

# What /search looks in (the `items_fts` table, see `bot.store._search_index`).
FTS_COLUMNS = ("text", "link", "link_title", "author_handle")
# What a page or a feed shows of an item.
_COLUMNS = ("rowid, network, uri, url, author_id, author_handle, text, link, link_title, created_at, "
            "classified_at, updated_at, state, category")
_PHRASE = re.compile(r'"(?:[^"]|"")*"')  # a quoted word or phrase of `quote_fts`'s output
SEARCH_WINDOW = 1000  # /search ranks the newest this many matches
QUEUE_STATES = ("seen", "prompted", "expired")  # waiting for a moderator's decision


class WebQueries:
    """Mixed into `Store`, which provides the connection, the lock and the exclusion rule."""

    db: sqlite_utils.Database
    lock: threading.RLock
    _SHOWN: str

    def _exec(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def _digest_args(self, since: str, until: str) -> tuple[str, str, str, str]:
        raise NotImplementedError

    # ---- public pages and feeds -----------------------------------------------------------------

    def classified_items(self, category: str | None, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """Classified items that may be shown, newest first: of one category, or of all."""
        _, _, ids, keys = self._digest_args("", "")
        if category is None:
            where, index = "category IS NOT NULL", "items_created"
        else:
            where, index = "category = ?1", "items_classified"
        return self._all(
            f"SELECT {_COLUMNS} FROM items INDEXED BY {index} WHERE state = 'classified' AND {where} "
            f"AND {self._SHOWN} ORDER BY created_at DESC LIMIT ?2 OFFSET ?5",
            category, limit, ids, keys, offset)

    def search(self, query: str, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """Items that may be shown whose text, link, link title or author have every word of
        `query` (accents, case and endings ignored; FTS syntax in the query is taken as plain
        words), best match first (bm25) among the newest
        `SEARCH_WINDOW` matches."""
        # Every word a phrase: FTS operators lose their meaning.
        match = " ".join(w for w in _PHRASE.findall(self.db.quote_fts(query)) if w.strip('"'))
        if not match:
            return []
        # Ranked among the newest SEARCH_WINDOW matches (rowids grow with time; FTS5 reads a
        # match list newest first cheaply): bm25 for every item a common word is in takes seconds.
        _, _, ids, keys = self._digest_args("", "")
        cols = ", ".join(f"items.{c.strip()}" for c in _COLUMNS.split(","))
        return self._all(
            f"SELECT {cols} FROM (SELECT rowid AS id, rank FROM items_fts WHERE items_fts MATCH ?1 "
            "ORDER BY rowid DESC LIMIT ?6) AS found JOIN items ON items.rowid = found.id "
            f"WHERE {self._SHOWN} ORDER BY found.rank LIMIT ?2 OFFSET ?5",
            match, limit, ids, keys, offset, SEARCH_WINDOW)

    def first_item_at(self) -> str | None:
        """When the first item was posted (the archive starts there)."""
        return self._exec("SELECT min(created_at) FROM items").fetchone()[0]

    def last_change(self) -> str:
        """The time of the last write that can change a page or a feed (an item, or an author's
        standing): what Last-Modified says. Two index look-ups."""
        items = self._exec("SELECT max(updated_at) FROM items").fetchone()[0] or ""
        authors = self._exec("SELECT max(updated_at) FROM authors").fetchone()[0] or ""
        return max(items, authors)

    # ---- the moderation desk --------------------------------------------------------------------

    def desk_items(self, states: tuple[str, ...], limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """Items in one of `states`, newest first, whoever posted them, with the author's standing."""
        return self._all(
            f"SELECT {', '.join('i.' + c.strip() for c in _COLUMNS.split(','))}, i.reason, "
            "coalesce(a.blocked, 0) AS blocked FROM items i LEFT JOIN authors a "
            "ON a.network = i.network AND a.id = i.author_id "
            "WHERE i.state IN (SELECT value FROM json_each(?1)) ORDER BY i.created_at DESC "
            "LIMIT ?2 OFFSET ?3", json.dumps(list(states)), limit, offset)

    def blocked_authors(self) -> list[dict[str, Any]]:
        return self._all("SELECT network, id, handle, updated_at FROM authors WHERE blocked "
                         "ORDER BY handle, network")

    def author_handle(self, network: str, author_id: str) -> str | None:
        row = self._one("SELECT handle FROM authors WHERE network = ? AND id = ?", network, author_id)
        return row["handle"] if row else None

    def _log_decision(self, event: m.ModeratorDecision | m.ModeratorWithdrawal | m.ModeratorRestore
                      | m.ModeratorBlock, at: str) -> None:
        """A moderator's decision in the event log (who, what, when): the desk's history."""
        by = event.by
        if isinstance(event, m.ModeratorBlock):
            what = "block" if event.blocked else "unblock"
            uri, author, detail = "", event.author_id, {"handle": event.handle}
        else:
            what = {m.ModeratorDecision: "classify", m.ModeratorWithdrawal: "withdraw",
                    m.ModeratorRestore: "restore"}[type(event)]
            uri, author, detail = event.uri, None, {}
            if isinstance(event, m.ModeratorDecision):
                detail["category"] = event.category
        self._exec(
            "INSERT INTO events (at, network, uri, author_id, action, reason, detail) "
            "VALUES (?, ?, ?, ?, 'decision', ?, ?)",
            (at, event.network, uri, author, what, json.dumps({"by": by, **detail})))

    def decisions(self, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """Moderators' decisions, newest first: at, network, uri, author_id, what (`reason`),
        by, category, handle."""
        rows = self._all("SELECT id, at, network, uri, author_id, reason, detail FROM events "
                         "WHERE action = 'decision' ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset)
        return [{"by": "", "category": None, "handle": None, **r, **json.loads(r.pop("detail") or "{}")}
                for r in rows]

    # ---- moderators' accounts -------------------------------------------------------------------

    def set_moderator(self, name: str, password_hash: str, at: str) -> None:
        """Add a moderator, or give one a new password."""
        self._exec("INSERT INTO moderators (name, password_hash, created_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
                   (name, password_hash, at))

    def moderator_hash(self, name: str) -> str | None:
        row = self._one("SELECT password_hash FROM moderators WHERE name = ?", name)
        return row["password_hash"] if row else None

    def moderators(self) -> list[dict[str, Any]]:
        return self._all("SELECT name, created_at FROM moderators ORDER BY name")

    def remove_moderator(self, name: str) -> bool:
        return self._exec("DELETE FROM moderators WHERE name = ?", (name,)).rowcount > 0
