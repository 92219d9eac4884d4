"""Mastodon faults during a burst: streams dropped, the server restarted, 429 with Retry-After,
500/502/503, answers slower than the client's timeout, and an answer read before its prompt is
stored. Each ends with `check_mastodon` (none lost, none duplicated, one prompt and one boost per
post on the server)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from bot import config as cfg
from bot.model import Prompt
from bot.runtime import Runtime, build_adapters
from bot.store import Store
from tests.mastodon_server import MastodonServer
from tests.test_faults_support import (
    BOT,
    TOKEN_ENV,
    BotProcess,
    Burst,
    check_mastodon,
    classified,
    listening,
    populate,
    wait_for,
    wait_settled,
    write_config,
)


class Scenario:
    """The real bot process against `server`, a burst, and the verdict."""

    def __init__(self, server: MastodonServer, tmp_path: Path, count: int = 60, pause: float = 0.01) -> None:
        self.server, self.tmp_path, self.db = server, tmp_path, tmp_path / "bot.db"
        self.token = populate(server)
        write_config(tmp_path, server)
        self.bot = BotProcess(tmp_path / "numpolville.toml", tmp_path / "bot.log", {TOKEN_ENV: self.token})
        wait_for(lambda: listening(server, self.db), timeout=20, what="the bot to listen")
        self.burst = Burst(server, count=count, pause=pause).start()

    def finish(self, timeout: float = 60) -> dict[str, int]:
        try:
            wait_settled(self.burst, self.db, timeout)
            assert self.bot.alive()
        finally:
            self.burst.close()
            code, _ = self.bot.signal(signal.SIGTERM)
        assert code == 0
        return check_mastodon(self.server, self.db, self.burst)


def test_streams_dropped_mid_burst(server: MastodonServer, tmp_path: Path) -> None:
    s = Scenario(server, tmp_path, count=40)
    for _ in range(4):
        wait_for(lambda: classified(s.db) >= 5 or s.burst.done(), timeout=30, what="progress")
        opened = server.streams_opened()
        server.drop_streams()
        wait_for(lambda o=opened: server.streams_opened() >= o + 2, timeout=15, what="the streams reopened")
        time.sleep(0.5)
    counts = s.finish()
    print(f"\n4 drops, {server.streams_opened()} streams opened: {counts}")


def test_server_restarted_mid_burst(server: MastodonServer, tmp_path: Path) -> None:
    s = Scenario(server, tmp_path, count=40)
    for down in (0.5, 2.0, 4.0):
        wait_for(lambda: classified(s.db) >= 5 or s.burst.done(), timeout=30, what="progress")
        server.stop()
        time.sleep(down)
        server.start()
        wait_for(lambda: server.open_streams() >= 2, timeout=30, what="the streams reopened")
    counts = s.finish(timeout=90)
    print(f"\n3 restarts (0.5, 2, 4 s down): {counts}")


def test_429_with_retry_after(server: MastodonServer, tmp_path: Path) -> None:
    s = Scenario(server, tmp_path, count=30)
    wait_for(lambda: classified(s.db) >= 3, timeout=30, what="progress")
    forced_at = time.monotonic()
    for path in (r"/api/v1/statuses$", r"/reblog$", r"/favourite$", r"/notifications$"):
        server.force_status(path, 429, count=3, retry_after=2)
    counts = s.finish(timeout=90)
    # A 429 means the server did nothing: the bot waits the Retry-After then sends the same call.
    rejected = server.requests(status=429)
    assert len(rejected) >= 9  # the notifications are read only on a catch-up
    first = {r["path"].rsplit("/", 1)[-1]: r["time"] for r in reversed(rejected)}
    later = [r for r in server.requests_log if r["time"] > forced_at and r["status"] < 400
             and r["path"].rsplit("/", 1)[-1] in first]
    assert later, "the calls went through after the 429s"
    print(f"\n12 answers 429 (Retry-After 2 s) over {time.monotonic() - forced_at:.1f} s: {counts}")


def test_500_502_503_answers(server: MastodonServer, tmp_path: Path) -> None:
    s = Scenario(server, tmp_path, count=30)
    wait_for(lambda: classified(s.db) >= 3, timeout=30, what="progress")
    for path, code in ((r"/api/v1/statuses$", 500), (r"/reblog$", 502), (r"/favourite$", 503),
                       (r"/notifications$", 502), (r"/timelines/tag/", 503), (r"/streaming/", 500)):
        server.force_status(path, code, count=6)
    server.drop_streams()  # the reconnections meet the 500s
    counts = s.finish(timeout=90)
    answered = {code: len(server.requests(status=code)) for code in (500, 502, 503)}
    print(f"\nanswers {answered}: {counts}")
    assert answered[500] >= 6 and answered[502] >= 6 and answered[503] >= 6


def in_process(server: MastodonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    config_path = write_config(tmp_path, server)
    monkeypatch.setenv(TOKEN_ENV, server.world.numpolville_token)  # type: ignore[attr-defined]
    config = cfg.load(config_path)
    store = Store(config.database)
    return Runtime(config, store, build_adapters(config, store))


def test_answers_slower_than_the_client_timeout(server: MastodonServer, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The server does the work but answers after the client gave up: the retry must find the
    first call's result (idempotency key for posts; boosts and favourites are idempotent)."""
    import bot.mastodon.client

    monkeypatch.setattr(bot.mastodon.client, "REQUEST_TIMEOUT", 1.0)
    server.world.numpolville_token = populate(server)  # type: ignore[attr-defined]
    runtime = in_process(server, tmp_path, monkeypatch)
    runtime.start()
    db = tmp_path / "bot.db"
    wait_for(lambda: listening(server, db), timeout=20, what="the bot to listen")
    burst = Burst(server, count=20).start()
    try:
        wait_for(lambda: classified(db) >= 2, timeout=30, what="progress")
        for path in (r"/api/v1/statuses$", r"/reblog$", r"/favourite$"):
            server.delay(path, 1.5)
        time.sleep(6)
        for path in (r"/api/v1/statuses$", r"/reblog$", r"/favourite$"):
            server.delay(path, 0)
        wait_settled(burst, db, timeout=60)
    finally:
        burst.close()
        runtime.shutdown(timeout=2)
    slow = [r for r in server.requests_log if r["duration"] > 1.0]
    counts = check_mastodon(server, db, burst)
    print(f"\n{len(slow)} calls answered after the 1 s client timeout: {counts}")
    assert slow


def test_an_answer_read_before_its_prompt_is_stored_is_not_lost(
        server: MastodonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompt reached the server but the process died before writing it down; the answer
    comes in while the bot is down. On the next start the notifications catch-up reads the answer
    before the effect worker has redone the prompt: it must still count as the answer."""
    server.world.numpolville_token = populate(server)  # type: ignore[attr-defined]
    db = tmp_path / "bot.db"
    runtime = in_process(server, tmp_path, monkeypatch)
    adapter = runtime.adapters[0]
    real = adapter.perform

    def posted_then_crashed(action: object) -> str | None:
        result = real(action)  # type: ignore[arg-type]
        if isinstance(action, Prompt):
            raise ConnectionError("the process died before writing the result down")
        return result

    adapter.perform = posted_then_crashed  # type: ignore[method-assign]
    runtime.start()
    wait_for(lambda: listening(server, db), timeout=20, what="the bot to listen")
    post = server.post("user1", "Un lien https://example.org/x #numpolville")
    prompt = wait_for(lambda: next((s for s in server.statuses(BOT) if s.in_reply_to_id == post["id"]),
                                   None), what="the prompt on the server")
    runtime.shutdown(timeout=2)
    runtime.store.close()
    server.post("user1", f"@{BOT} 2", in_reply_to_id=prompt.id, visibility="unlisted")

    runtime = in_process(server, tmp_path, monkeypatch)
    adapter = runtime.adapters[0]
    real2, answered = adapter.perform, threading.Event()

    def prompts_late(action: object) -> str | None:
        if isinstance(action, Prompt):
            answered.wait(5)  # the catch-up reads the answer first
        return real2(action)  # type: ignore[arg-type]

    adapter.perform = prompts_late  # type: ignore[method-assign]
    runtime.start()
    try:
        check = Store(db)
        wait_for(lambda: (i := check.find_item(post["id"])) and i.state == "classified", timeout=10,
                 what="the answer applied")
        answered.set()
        wait_for(lambda: check.health()["pending_intents"] == 0, timeout=10, what="intents done")
    finally:
        answered.set()
        runtime.shutdown(timeout=2)
    replies = [s for s in server.statuses(BOT) if s.in_reply_to_id == post["id"]]
    assert len(replies) == 1
    assert (server.account(BOT).id, post["id"]) in server.reblogs()
