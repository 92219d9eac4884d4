"""The real `numpolville run` process: SIGTERM/SIGINT, `kill -9` mid-burst, `numpolville status`.

Every scenario ends with `check_mastodon`: the store holds exactly the posts made, each
classified and boosted, one prompt per post on the server, no second boost, nothing pending."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mastodon_server import MastodonServer
from tests.test_faults_support import (
    TOKEN_ENV,
    BotProcess,
    Burst,
    check_mastodon,
    classified,
    json_lines,
    listening,
    populate,
    query,
    wait_for,
    wait_settled,
    write_config,
)


def start_bot(server: MastodonServer, tmp_path: Path, token: str) -> BotProcess:
    bot = BotProcess(tmp_path / "numpolville.toml", tmp_path / "bot.log", {TOKEN_ENV: token})
    wait_for(lambda: listening(server, tmp_path / "bot.db") or not bot.alive(), timeout=20,
             what="the bot to listen")
    assert bot.alive(), (tmp_path / "bot.log").read_text()[-3000:]
    return bot


def status(tmp_path: Path, max_silence: float) -> tuple[int, dict]:
    run = subprocess.run([sys.executable, "-m", "bot", "status", "--config",
                          str(tmp_path / "numpolville.toml"), "--max-silence", str(max_silence),
                          "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    return run.returncode, json.loads(run.stdout) if run.stdout.strip() else {"stderr": run.stderr}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_burst_exits_0_within_5_s_and_the_next_start_finishes(
        server: MastodonServer, tmp_path: Path, sig: int) -> None:
    token = populate(server)
    write_config(tmp_path, server)
    db = tmp_path / "bot.db"
    bot = start_bot(server, tmp_path, token)
    burst = Burst(server, count=40).start()
    wait_for(lambda: classified(db) >= 5, timeout=30, what="a few items classified")
    code, took = bot.signal(sig)
    print(f"\n{signal.Signals(sig).name}: exit {code} in {took:.2f} s, "
          f"{classified(db)} classified so far")
    assert code == 0 and took < 5.0
    assert any("stopped" in e.get("message", "") for e in json_lines(tmp_path / "bot.log"))
    assert not server.open_streams() or wait_for(lambda: server.open_streams() == 0, timeout=3,
                                                 what="sockets closed")
    start_again_until_settled(server, tmp_path, token, burst, db)



def start_again_until_settled(server: MastodonServer, tmp_path: Path, token: str, burst: Burst,
                              db: Path) -> None:
    """The next start carries out what the stopped process left: the burst settles with nothing
    lost or repeated (check_mastodon's counts are printed)."""
    bot = start_bot(server, tmp_path, token)
    try:
        wait_settled(burst, db, timeout=60)
    finally:
        burst.close()
        bot.stop()
    print(check_mastodon(server, db, burst))

def test_pending_intents_are_completed_by_the_next_start(server: MastodonServer, tmp_path: Path) -> None:
    """An intent written but not carried out (the process stopped while the server was down) is
    carried out on the next start, once: the prompt's idempotency key finds the first one."""
    token = populate(server)
    write_config(tmp_path, server)
    db = tmp_path / "bot.db"
    bot = start_bot(server, tmp_path, token)
    server.force_status(r"/api/v1/statuses$", 503, count=10_000)  # prompts fail, posts are seen
    burst = Burst(server, count=10).start()
    wait_for(lambda: query(db, "SELECT count(*) FROM intents WHERE state = 'pending' AND kind = 'prompt'")
             [0][0] == 10, timeout=30, what="10 pending prompts")
    code, took = bot.signal(signal.SIGTERM)
    assert code == 0 and took < 5.0
    server.faults.clear()
    start_again_until_settled(server, tmp_path, token, burst, db)


def test_kill_9_at_random_moments_5_times(flavoured_server: MastodonServer, tmp_path: Path) -> None:
    """On every server family: GoToSocial ignores Idempotency-Key, so there the retried prompts
    are found in their threads; Akkoma streams only what its URL names."""
    server = flavoured_server
    token = populate(server)
    write_config(tmp_path, server)
    db = tmp_path / "bot.db"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    bot = start_bot(server, tmp_path, token)
    burst = Burst(server, count=100, pause=0.02).start()
    kills = []
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.2, 3.0))
            kills.append(classified(db))
            bot.kill9()
            bot = start_bot(server, tmp_path, token)
        wait_settled(burst, db, timeout=90)
    finally:
        burst.close()
        bot.stop()
    counts = check_mastodon(server, db, burst)
    print(f"\nkill -9 (seed {seed}) with {kills} items classified; final {counts}")


def test_status_reflects_sources_and_fails_when_the_server_is_gone(
        server: MastodonServer, tmp_path: Path) -> None:
    token = populate(server)
    write_config(tmp_path, server)
    bot = start_bot(server, tmp_path, token)
    try:
        code, report = status(tmp_path, 5)
        assert code == 0, report
        modes = {s["name"]: (s["mode"], s["state"]) for s in report["sources"]}
        assert modes == {"tag": ("streaming", "running"), "mentions": ("streaming", "running")}

        server.stop()  # streams cut, every request refused
        # The streams fall back to polling, whose requests fail after their retries (3.5 s).
        # Unhealthy, each source failing (the problem says "failing" or, between two restart
        # attempts longer apart than --max-silence, "silent"). A restarted source counts as
        # running until its first request fails again, so the report that showed both failing
        # is the one read (a second look may fall between a restart and its failure).
        seen: dict[str, Any] = {}

        def down() -> bool:
            code, seen["report"] = status(tmp_path, 2)
            return code == 1 and {s["state"] for s in seen["report"]["sources"]} == {"failing"}

        wait_for(down, timeout=20, what="failing sources, for longer than 2 s")
        report = seen["report"]
        print("\nserver down:", report["problem"])
        assert "mastodon tag" in report["problem"] and "mastodon mentions" in report["problem"]

        server.start()  # back on the same port: the sources reconnect
        wait_for(lambda: server.open_streams() >= 2, timeout=30, what="reconnected streams")
        wait_for(lambda: status(tmp_path, 5)[0] == 0, timeout=10, what="healthy again")
        code, report = status(tmp_path, 5)
        assert all(s["reconnects"] >= 1 and s["mode"] == "streaming" for s in report["sources"]), report
    finally:
        bot.kill9()
    time.sleep(2.5)  # no heartbeat from a dead process
    code, report = status(tmp_path, 2)
    assert code == 1 and "silent" in report["problem"], report


@pytest.mark.soak
def test_soak_kill_9_for_30_minutes(server: MastodonServer, tmp_path: Path) -> None:
    """The kill -9 scenario for 30 minutes: 3000 posts and answers, a kill every few seconds."""
    token = populate(server)
    write_config(tmp_path, server)
    db = tmp_path / "bot.db"
    rng = random.Random()
    deadline, rounds = time.monotonic() + 30 * 60, 0
    bot = start_bot(server, tmp_path, token)
    burst = Burst(server, count=3000, pause=0.55).start()
    try:
        while time.monotonic() < deadline and not burst.done():
            time.sleep(rng.uniform(0.2, 5.0))
            bot.kill9()
            bot = start_bot(server, tmp_path, token)
            rounds += 1
        wait_settled(burst, db, timeout=120)
    finally:
        burst.close()
        bot.stop()
    print(f"\nsoak: {rounds} kills: {check_mastodon(server, db, burst)}")
