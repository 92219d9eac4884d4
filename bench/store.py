"""Item 5: store upserts/s, and the weekly digest over a synthetic store of 1,000,000 items.

The synthetic store is written with one `executemany` per table in one transaction (about 10 s)
and cached under `bench/.cache/` (git-ignored); it is rebuilt when the schema version changes.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot import model as m
from bot.store import SCHEMA, Store, iso

CACHE = Path(__file__).parent / ".cache"
END = datetime(2026, 11, 2, tzinfo=timezone.utc)  # a Monday: the store's last two years end here
YEARS = 2
CATEGORIES = ("projet", "contexte", "initiative", "prospective", None)
STATES = ("classified",) * 6 + ("prompted", "expired", "seen", "deleted")


def upserts(n: int = 20_000) -> dict[str, Any]:
    """`Store.apply` of a PostSeen + Record, the write the curator does for each new post; half of
    them on posts already stored (the same post seen again)."""
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "u.db")
        t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        posts = []
        for i in range(n // 2):
            author = m.Author("bluesky", f"did:plc:a{i % 500:05d}", f"a{i % 500}.test")
            uri = f"at://{author.id}/app.bsky.feed.post/3k{i:010d}"
            posts.append(m.Post("bluesky", uri, f"{uri} bafy", f"https://bsky.app/{i}", author,
                                f"un texte #numpolville {i}", t0 + timedelta(minutes=i),
                                tags=frozenset({"numpolville"})))
        start = time.perf_counter()
        for p in posts + posts:
            store.apply(m.PostSeen(p), [m.Record(p, "prompted")])
        dt = time.perf_counter() - start
        store.close()
    return {"upserts": n, "seconds": dt, "per_second": n / dt}


def synthetic_store(items: int = 1_000_000, *, path: Path | None = None) -> Path:
    """A store of `items` items over two years, `items / 200` authors. Cached."""
    path = path or CACHE / f"store-{items}-v{len(SCHEMA)}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    Store(tmp).close()  # the schema, by the store's own migrations
    rng = random.Random(5)
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    n_authors = max(1, items // 200)
    span = YEARS * 365 * 86400
    start = END - timedelta(seconds=span)
    at = END.isoformat(timespec="seconds")

    def authors() -> Any:
        for a in range(n_authors):
            network = "bluesky" if a % 2 else "mastodon"
            yield (network, f"id{a}", f"user{a}.example", 1, int(a % 97 == 0), int(a % 89 == 0),
                   '["!no-unauthenticated"]' if a % 83 == 0 else "[]", at)

    def rows() -> Any:
        for i in range(items):
            a = rng.randrange(n_authors)
            network = "bluesky" if a % 2 else "mastodon"
            created = start + timedelta(seconds=span * i / items)
            c = created.isoformat(timespec="seconds")
            uri = (f"at://id{a}/app.bsky.feed.post/{i}" if network == "bluesky"  # as a feed serves them
                   else f"https://{network}.example/{a}/{i}")
            state = rng.choice(STATES)
            link = f"https://site{rng.randrange(20_000)}.example/page{rng.randrange(50)}"
            yield (network, uri, uri, uri, f"id{a}", f"user{a}.example",
                   f"Un lien partagé n°{i} sur l'inclusion numérique #numpolville {link}", link,
                   f"Titre {i % 1000}", c, "public", state,
                   rng.choice(CATEGORIES) if state == "classified" else None, c, c, int(state == "deleted"))

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO authors (network, id, handle, follows_bot, opted_out, nobot, labels, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", authors())
    conn.executemany("INSERT INTO items (network, uri, ref, url, author_id, author_handle, text, link, "
                     "link_title, created_at, visibility, state, category, seen_at, updated_at, deleted) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    Store(tmp).close()  # migrations appended later apply to a cached copy too
    shutil.move(tmp, path)
    return path


def digest(path: Path, formats: tuple[str, ...] | None = None, runs: int = 3) -> dict[str, Any]:
    """The weekly digest (the last full week before END) in every format, built and rendered from
    the store each time: best of `runs` (and the first run, which also compiles the template).
    `entries` says how many entries the week has and how many the digest lists in full
    (`[digest] max_entries` per category); `query_only` times the store's part of a build."""
    from bot import digest as dg
    from bot.config import parse

    config = parse({"database": str(path)})
    store = Store(path, clock=lambda: END)
    period = dg.last_full_week(END + timedelta(hours=12), dg.zone(config.digest.timezone))
    out: dict[str, Any] = {}
    for fmt in formats or dg.FORMATS:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            text = dg.render(dg.build_digest(store, config, period), config, fmt)
            times.append(time.perf_counter() - t0)
        out[fmt] = {"seconds": min(times), "first_seconds": times[0], "bytes": len(text.encode())}
    t0 = time.perf_counter()
    built = dg.build_digest(store, config, period)
    out["build_only"] = {"seconds": time.perf_counter() - t0}
    out["entries"] = {"in_period": built.total, "listed": built.listed,
                      "max_entries_per_category": config.digest.max_entries, "posts": built.posts}
    bounds = [iso(p.start) for p in period.history(8)] + [iso(period.end)]
    t0 = time.perf_counter()
    shares = store.digest_shares(bounds[-2], bounds[-1])
    past = store.digest_links(bounds[:-1])
    store.digest_items(r[0] for r in shares[:built.listed])  # as many full rows as are listed
    out["query_only"] = {"seconds": time.perf_counter() - t0,
                         "rows": len(shares) + sum(len(links) for _, links, _ in past)}
    n = store._exec("SELECT count(*) FROM items").fetchone()[0]
    store.close()
    out["items"] = n
    out["db_bytes"] = path.stat().st_size
    out["bytes_per_item"] = path.stat().st_size / n
    return out
