"""`numpolville browse`: Datasette on 127.0.0.1 with the canned queries, run as a person would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from bot import browse
from bot import model as m
from bot.config import parse
from bot.curator import Curator
from bot.store import Store

pytest.importorskip("datasette", reason=browse.INSTALL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A store with this week's items: alice's classified one, bob's still waiting for an answer,
    and an old one of alice's (not this week)."""
    db = tmp_path / "log.db"
    store = Store(db)
    curator = Curator(parse({}), store)
    now = datetime.now(timezone.utc)

    def post(who: str, uri: str, at: datetime, text: str = "lien #numpolville",
             reply: str | None = None) -> None:
        author = m.Author("mastodon", who, f"{who}@home.test", follows_bot=True)
        for intent in curator.handle(m.PostSeen(m.Post(
                "mastodon", uri, uri, f"https://home.test/{uri}", author, text, at,
                tags=frozenset({"numpolville"}) if reply is None else frozenset(), reply_to=reply))):
            store.intent_done(intent, f"P{uri} P{uri}")

    post("alice", "a1", now - timedelta(seconds=2))
    post("alice", "r1", now, "2", reply="Pa1")  # alice answers: contexte
    post("bob", "b1", now - timedelta(seconds=1))
    post("alice", "old", now - timedelta(days=30))
    store.close()
    path = tmp_path / "c.toml"
    path.write_text(f'database = "{db}"\n', encoding="utf-8")
    return path


def test_metadata_describes_every_table_and_column(tmp_path: Path) -> None:
    meta = browse.metadata(tmp_path / "x.db")
    tables = meta["databases"]["x"]["tables"]
    store = Store(tmp_path / "x.db")
    for table in store.db.table_names():
        if table.startswith("sqlite_"):
            continue
        assert tables[table]["description"], table
        if table != "_migrations":
            assert set(store.db[table].columns_dict) == set(tables[table]["columns"]), table
    assert {"this_week", "unanswered_prompts", "top_sharers"} <= set(meta["databases"]["x"]["queries"])


def test_browse_serves_the_canned_queries(config: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "browse", "--config", str(config), "--port",
                             str(port), "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(f"{base}/-/versions.json", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "datasette did not start"
                time.sleep(0.1)
        week = requests.get(f"{base}/log/this_week.json?_shape=array", timeout=5).json()
        assert [(r["category"], r["author_handle"]) for r in week] == [
            ("contexte", "alice@home.test"), ("(unclassified)", "bob@home.test")]
        waiting = requests.get(f"{base}/log/unanswered_prompts.json?_shape=array", timeout=5).json()
        assert {r["url"].rsplit("/", 1)[1] for r in waiting} == {"b1", "old"}  # not a1: answered
        sharers = requests.get(f"{base}/log/top_sharers.json?_shape=array", timeout=5).json()
        assert (sharers[0]["author_handle"], sharers[0]["items"], sharers[0]["classified"]) == (
            "alice@home.test", 2, 1)
        page = requests.get(f"{base}/log/items", timeout=5).text
        assert "where it stands" in page  # the table's description
    finally:
        proc.terminate()
        proc.wait(10)
    deadline = time.monotonic() + 10  # Datasette, its child, stops with it (SIGTERM, not Ctrl-C)
    while True:
        try:
            requests.get(f"{base}/-/versions.json", timeout=1)
        except requests.ConnectionError:
            break
        assert time.monotonic() < deadline, "Datasette outlived `numpolville browse`"
        time.sleep(0.2)


def test_a_clear_error_without_datasette(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.setattr(browse.importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(app, ["browse", "--config", str(config), "--no-open"])
    assert result.exit_code == 1 and browse.INSTALL in result.output
