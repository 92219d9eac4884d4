"""Shared pieces of the fault-injection suite (`tests/test_faults_*.py`); no tests here.

The bot runs as the real `python -m bot run --log-format json` process (or an in-process
`Runtime` where a fault must be injected inside the process), against the local Mastodon-API
server. A `Burst` plays the people: tagged posts, then an answer to each prompt as it appears.
`check_mastodon` is the one verdict every scenario ends with: every post is one item, classified
with the answer's category, prompted exactly once and boosted exactly once on the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.mastodon_server import MastodonServer

ROOT = Path(__file__).resolve().parents[1]
TAG = "numpolville"
BOT = "numpolvillebot"
PEOPLE = [f"user{n}" for n in range(10)]
TOKEN_ENV = "NUMPOLVILLE_MASTODON_TOKEN"
PASSWORD_ENV = "NUMPOLVILLE_BLUESKY_PASSWORD"
CATEGORY = {"1": "projet", "2": "contexte", "3": "initiative", "4": "prospective"}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: Any = "condition",
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


def populate(server: MastodonServer, people: list[str] = PEOPLE) -> str:
    """The bot's account and people who follow it; returns the bot's token."""
    _, token = server.create_account(BOT, note="Je range les partages #numpolville", bot=True)
    for name in people:
        server.create_account(name, note=f"{name}, politique de la ville")
        server.follow(name, BOT)
    return token


def write_config(tmp_path: Path, server: MastodonServer, *, db: Path | None = None,
                 extra: str = "", bluesky: str = "") -> Path:
    db = db or tmp_path / "bot.db"
    config = tmp_path / "numpolville.toml"
    config.write_text(f"""
hashtag = "{TAG}"
language = "fr"
database = "{db}"

[mastodon]
enabled = true
api_base_url = "{server.base_url}"
poll_interval = 0.5
{extra}
{bluesky}
[policy]
prompt = "followers"
acknowledge = "favourite"
max_prompts_per_author_per_day = 1000
""", encoding="utf-8")
    return config


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a `python -m bot` child: this one, the repository importable, `env`."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env}


def numpolville(config: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A one-off `python -m bot ARGS --config F` (export, forget, digest --post, doctor), run in
    the config's folder as `BotProcess` is; its output captured."""
    return subprocess.run([sys.executable, "-m", "bot", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=process_env(env or {}), cwd=config.parent)


class BotProcess:
    """`python -m bot run --config F --log-format json`, its stderr appended to `log`."""

    def __init__(self, config: Path, log: Path, env: dict[str, str], fmt: str = "json") -> None:
        self.log = log
        self.handle = log.open("a", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config), "--log-format", fmt],
            stdout=self.handle, stderr=self.handle, stdin=subprocess.DEVNULL, env=process_env(env),
            cwd=config.parent)  # no stray .env from the repository

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int, timeout: float = 10.0) -> tuple[int | None, float]:
        """Send `sig`; return (exit code, seconds to exit)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.handle.close()
        return code, time.monotonic() - started

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.handle.close()

    def stop(self) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)


def json_lines(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"level": "raw", "message": line})
    return out


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """A short-lived read-only second connection, as `numpolville export` would open."""
    for attempt in range(50):
        try:
            # closed at once: a connection left to the garbage collector (its statement cache
            # refers back to it) keeps the bot's close from folding the WAL in
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    raise AssertionError


def listening(server: MastodonServer, db: Path, streams: int = 2) -> bool:
    return (db.exists() and len(query(db, "SELECT 1 FROM cursors WHERE network = 'mastodon'")) >= 2
            and server.open_streams() >= streams)


@dataclass
class Burst:
    """People post `count` tagged posts (spread over `PEOPLE`), then answer every prompt of the
    bot with the number of a category, from a background thread, until `close()`."""

    server: MastodonServer
    count: int = 100
    pause: float = 0.0
    answer_text: Callable[[int], str] = lambda n: str(n % 4 + 1)
    filler: str = ""  # appended to every post (long posts fill the database faster)
    posts: dict[str, tuple[str, str]] = field(default_factory=dict)  # post id -> (author, answer)
    answered: dict[str, str] = field(default_factory=dict)  # post id -> answer id
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Burst:
        self.thread = threading.Thread(target=self._run, daemon=True, name="burst")
        self.thread.start()
        return self

    def _run(self) -> None:
        for n in range(self.count):
            if self.stopped.is_set():
                return
            who = PEOPLE[n % len(PEOPLE)]
            text = f"Partage {n} https://example.org/{n} #{TAG}{self.filler}"
            status = self._retry(lambda who=who, text=text: self.server.post(who, text))
            self.posts[status["id"]] = (who, self.answer_text(n))
            if self.pause:
                time.sleep(self.pause)
            self.answer_what_is_prompted()
        while not self.stopped.wait(0.05):
            self.answer_what_is_prompted()

    @staticmethod
    def _retry(fn: Callable[[], Any]) -> Any:
        for _ in range(100):  # the server may be stopped for a restart: the world stays
            try:
                return fn()
            except Exception:  # noqa: BLE001
                time.sleep(0.05)
        return fn()

    def answer_what_is_prompted(self) -> None:
        for prompt in self.prompts():
            post_id = prompt.in_reply_to_id
            if post_id in self.posts and post_id not in self.answered:
                who, text = self.posts[post_id]
                answer = self.server.post(who, f"@{BOT} {text}", in_reply_to_id=prompt.id,
                                          visibility="unlisted")
                self.answered[post_id] = answer["id"]

    def prompts(self) -> list[Any]:
        return [s for s in self.server.statuses(BOT) if s.in_reply_to_id]

    def done(self) -> bool:
        return len(self.posts) == self.count and len(self.answered) == self.count

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(10)


def classified(db: Path) -> int:
    return query(db, "SELECT count(*) FROM items WHERE state = 'classified' AND boosted_at IS NOT NULL "
                     "AND network = 'mastodon'")[0][0] if db.exists() else 0


def wait_settled(burst: Burst, db: Path, timeout: float = 60) -> None:
    """Until every post of the burst is classified and boosted and no intent is pending; a
    timeout says what is missing."""
    def settled() -> bool:
        return (burst.done() and classified(db) == burst.count
                and query(db, "SELECT count(*) FROM intents WHERE state = 'pending'")[0][0] == 0)

    wait_for(settled, timeout=timeout, what=lambda: diagnose(burst, db))


def check_mastodon(server: MastodonServer, db: Path, burst: Burst) -> dict[str, int]:
    """None lost, none duplicated, no second prompt or boost on the server; returns counts."""
    bot = server.account(BOT).id
    rows = {r[0]: r[1:] for r in query(
        db, "SELECT ref, state, category, boosted_at, prompt_uri FROM items WHERE network = 'mastodon'")}
    assert set(rows) == set(burst.posts), "items in the store are exactly the posts made"
    for post_id, (_, text) in burst.posts.items():
        state, category, boosted_at, prompt_uri = rows[post_id]
        assert (state, category) == ("classified", CATEGORY[text.split()[-1]]), (post_id, rows[post_id])
        assert boosted_at and prompt_uri, (post_id, rows[post_id])
    replies: dict[str, int] = {}
    for s in server.statuses(BOT):
        if s.in_reply_to_id:
            replies[s.in_reply_to_id] = replies.get(s.in_reply_to_id, 0) + 1
    assert {k: v for k, v in replies.items() if v != 1} == {}, "a second prompt to one post"
    assert set(replies) == set(burst.posts), "one prompt per post, no other reply"
    reblogs = [sid for acc, sid in server.reblogs() if acc == bot]
    assert sorted(reblogs) == sorted(burst.posts), "every post boosted exactly once"
    assert not server.requests("POST", r"/unreblog$"), "never unboosted"
    favourites = [sid for acc, sid in server.favourites() if acc == bot]
    assert sorted(favourites) == sorted(burst.answered.values()), "every answer acknowledged once"
    states = dict(query(db, "SELECT state, count(*) FROM intents GROUP BY state"))
    assert states.get("pending", 0) == 0 and states.get("failed", 0) == 0, states
    return {"items": len(rows), "prompts": sum(replies.values()), "boosts": len(reblogs),
            "favourites": len(favourites), "intents_done": states.get("done", 0)}


def diagnose(burst: Burst, db: Path) -> str:
    """What is missing, for a timeout's message."""
    states = query(db, "SELECT state, count(*), sum(boosted_at IS NOT NULL) FROM items GROUP BY state")
    intents = query(db, "SELECT kind, state, count(*), max(error) FROM intents GROUP BY kind, state")
    return (f"the burst to settle: {len(burst.posts)} posted, {len(burst.answered)} answered, "
            f"{len(burst.prompts())} prompts; items {states}; intents {intents}; "
            f"HTTP 429 answered: {len(burst.server.requests(status=429))}")
