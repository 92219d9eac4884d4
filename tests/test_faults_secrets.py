"""Secrets never reach the logs or the database: the real bot process, with a known Mastodon
token and Bluesky app password, through a burst, a server restart and 500 answers, in both
log formats; every log line and every byte of the database files (WAL included) is searched."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.mastodon_server import MastodonServer
from tests.test_faults_support import (
    PASSWORD_ENV,
    TOKEN_ENV,
    BotProcess,
    Burst,
    classified,
    listening,
    populate,
    wait_for,
    write_config,
)

PASSWORD = "abcd-efgh-ijkl-mnop"  # an app password's shape


@pytest.mark.parametrize("fmt", ["json", "rich"])
def test_no_secret_in_logs_or_database(server: MastodonServer, tmp_path: Path, fmt: str) -> None:
    token = populate(server)
    write_config(tmp_path, server, bluesky="""
[bluesky]
enabled = true
service = "http://127.0.0.1:9"
handle = "bot.test"
""")
    db = tmp_path / "bot.db"
    bot = BotProcess(tmp_path / "numpolville.toml", tmp_path / "bot.log",
                     {TOKEN_ENV: token, PASSWORD_ENV: PASSWORD}, fmt=fmt)
    burst = None
    try:
        wait_for(lambda: listening(server, db), timeout=20, what="the bot to listen")
        burst = Burst(server, count=10).start()
        wait_for(lambda: classified(db) >= 2, timeout=30, what="progress")
        server.force_status(r"/api/v1/statuses$", 500, count=3)
        server.stop()
        server.start()
        wait_for(lambda: burst.done() and classified(db) == 10, timeout=60, what="the burst done")
    finally:
        if burst:
            burst.close()
        if bot.alive():
            bot.signal(signal.SIGTERM)
    log = (tmp_path / "bot.log").read_bytes()
    assert b"signed in" in log and len(log.splitlines()) > 20
    files = [p for p in tmp_path.iterdir() if p.name.startswith("bot.db")]
    assert any(p.name.endswith("-wal") for p in files) or files
    for secret in (token, PASSWORD):
        assert secret.encode() not in log
        for p in files:
            assert secret.encode() not in p.read_bytes(), p.name
    print(f"\n{fmt}: {len(log.splitlines())} log lines, {len(files)} database files, no secret")
