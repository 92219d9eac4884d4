"""The supervisor, with a scripted in-process adapter: restarts, exactly-once effects, health.

The real networks are exercised end to end in the Mastodon and Bluesky suites; here the adapter
is a script so that failures can be placed exactly.
"""

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot import model as m
from bot.adapter import Emit, PermanentError
from bot.config import parse
from bot.health import assess
from bot.runtime import Runtime
from bot.store import Store

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
CFG = parse({"policy": {"max_prompts_per_author_per_day": 100}})
ALICE = m.Author("mastodon", "1", "alice@home.test", follows_bot=True)


def tagged(n: int) -> m.Post:
    return m.Post("mastodon", f"u{n}", f"u{n}", "", ALICE, "x #numpolville", T0,
                  tags=frozenset({"numpolville"}))


class FlakySource:
    """Emits its posts, failing once in the middle; then waits for stop."""

    name, mode, reason = "script", "streaming", ""

    def __init__(self, posts: list[m.Post]) -> None:
        self.posts, self.runs = posts, 0

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self.runs += 1
        half = len(self.posts) // 2
        batch = self.posts[:half] if self.runs == 1 else self.posts
        for p in batch:
            emit(m.PostSeen(p))  # a restart re-sends the first half: the store absorbs it
        if self.runs == 1:
            raise ConnectionError("stream dropped")
        stop.wait()


class ScriptedAdapter:
    network = "mastodon"

    def __init__(self, source: FlakySource, fail_first: int = 0) -> None:
        self.source, self.fail_first = source, fail_first
        self.performed: list[str] = []
        self.closed = False

    def connect(self) -> frozenset[str]:
        return frozenset({"100"})

    def sources(self) -> list[FlakySource]:
        return [self.source]

    def perform(self, action: m.Action) -> str | None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise TimeoutError("server slow")
        assert isinstance(action, m.Prompt)
        if action.post.uri == "u-gone":
            raise PermanentError("404: the post is gone")
        self.performed.append(action.post.uri)
        return f"P-{action.post.uri} P-{action.post.uri}"

    def close(self) -> None:
        self.closed = True


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.runtime.random.uniform", lambda a, b: 0.01)


def test_a_failing_source_is_restarted_and_nothing_is_done_twice(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    adapter = ScriptedAdapter(FlakySource([tagged(n) for n in range(20)]))
    rt = Runtime(CFG, store, [adapter])
    rt.start()
    wait_for(lambda: len(adapter.performed) == 20)
    rt.shutdown()
    assert adapter.source.runs == 2 and adapter.closed
    assert sorted(adapter.performed) == sorted(f"u{n}" for n in range(20))
    assert store.db["items"].count == 20
    [src] = store.health()["sources"]
    assert src["reconnects"] == 1 and src["state"] == "stopped"


def test_transient_failures_are_retried_and_pending_intents_survive_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.runtime.TICK", 0.05)
    path = tmp_path / "db.sqlite"
    store = Store(path)
    # A previous process wrote the intent and died before the network call.
    from bot.curator import Curator

    Curator(CFG, store).handle(m.PostSeen(tagged(1)))
    Curator(CFG, store).handle(m.PostSeen(m.Post("mastodon", "u-gone", "x", "", ALICE, "#numpolville", T0,
                                                       tags=frozenset({"numpolville"}))))
    adapter = ScriptedAdapter(FlakySource([]), fail_first=1)
    rt = Runtime(CFG, Store(path), [adapter])
    rt.start()
    wait_for(lambda: adapter.performed == ["u1"])
    wait_for(lambda: store.pending_intents("mastodon") == [])
    rt.shutdown()
    failed = store.db.execute("SELECT uri, state FROM intents WHERE state = 'failed'").fetchall()
    assert failed == [("u-gone", "failed")]
    assert store.item("mastodon", "u1").prompt_uri == "P-u1"  # type: ignore[union-attr]


def test_health_assessment() -> None:
    now = T0
    fresh = {"network": "bluesky", "name": "firehose", "mode": "streaming", "state": "running",
             "updated_at": (now - timedelta(seconds=20)).isoformat(), "last_event_at": None,
             "failing_since": None, "error": None, "reconnects": 0}
    health = {"sources": [fresh], "pending_intents": 0, "failed_intents": 0, "waiting": 0, "items": 0}
    assert assess(health, 300, now)["healthy"]
    stale = {**fresh, "updated_at": (now - timedelta(seconds=900)).isoformat()}
    assert not assess({**health, "sources": [stale]}, 300, now)["healthy"]
    failing = {**fresh, "state": "failing", "failing_since": (now - timedelta(seconds=400)).isoformat(),
               "error": "refused"}
    report = assess({**health, "sources": [failing]}, 300, now)
    assert not report["healthy"] and "refused" in report["problem"]
    assert not assess({**health, "sources": []}, 300, now)["healthy"]
