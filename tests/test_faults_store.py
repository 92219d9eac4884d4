"""The database in trouble under the real bot process: locked by another process for 10 s, and
the disk full (a small tmpfs filled up, then freed). The bot reports it, keeps running, and once
the lock or the space returns nothing is lost and nothing is done twice."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    wait_for,
    wait_settled,
    write_config,
)


def run_burst(server: MastodonServer, tmp_path: Path, db: Path, fault, count: int = 30,
              filler: str = "") -> tuple[dict[str, int], list[dict]]:
    token = populate(server)
    write_config(tmp_path, server, db=db)
    bot = BotProcess(tmp_path / "numpolville.toml", tmp_path / "bot.log", {TOKEN_ENV: token})
    burst = None
    try:
        wait_for(lambda: listening(server, db), timeout=20, what="the bot to listen")
        burst = Burst(server, count=count, pause=0.05, filler=filler).start()
        wait_for(lambda: classified(db) >= 3, timeout=30, what="progress")
        fault(burst)
        wait_settled(burst, db, timeout=90)
        assert bot.alive()
    finally:
        if burst:
            burst.close()
        code, took = bot.signal(signal.SIGTERM)
    assert code == 0 and took < 5
    return check_mastodon(server, db, burst), json_lines(tmp_path / "bot.log")


def test_database_locked_by_another_process_for_10_s(server: MastodonServer, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    held: dict[str, float] = {}

    def lock(burst: Burst) -> None:
        code = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(10); "
                "c.execute('COMMIT')")
        proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout and proc.stdout.readline().strip() == "locked"
        started, before = time.monotonic(), classified(db)
        proc.wait(20)
        held.update(seconds=time.monotonic() - started, before=before)

    counts, _ = run_burst(server, tmp_path, db, lock)
    print(f"\nlocked {held['seconds']:.1f} s with {held['before']:.0f} classified: {counts}")
    assert held["seconds"] >= 9.5


def test_disk_full(server: MastodonServer, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    db = disk / "bot.db"
    full: dict[str, float] = {}

    def fill(burst: Burst) -> None:
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        full["before"] = classified(db)
        started = time.monotonic()
        wait_for(lambda: any("full" in e.get("message", "") for e in json_lines(tmp_path / "bot.log")),
                 timeout=30, what="the bot to report the full disk")
        time.sleep(3)
        full["during"] = classified(db)
        (disk / "filler").unlink()
        full["seconds"] = time.monotonic() - started

    try:
        counts, lines = run_burst(server, tmp_path, db, fill, count=40, filler=" " + "x" * 400)
    finally:
        import shutil

        shutil.copy(db, tmp_path / "bot-after-disk-full.db")  # for a post-mortem
        subprocess.run(["umount", "-l", str(disk)], check=False)
    reports = [e["message"] for e in lines if "full" in e.get("message", "")]
    print(f"\ndisk full {full['seconds']:.1f} s ({full['before']:.0f} classified before, "
          f"{full['during']:.0f} during), {len(reports)} log lines say so, e.g. {reports[0]!r}: {counts}")
