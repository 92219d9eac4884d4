"""`make demo`: the bot at work on local servers, with nothing to configure.

Starts the tests' Mastodon-API server and the reference Bluesky network (PLC, PDS, AppView from
npm), writes a throw-away config and database under data/demo/, runs the real `numpolville run`
process against both, and plays one scene on each network with simulated people. A live view shows
what the bot does and why. It ends with the digest and the stats table, and stops every process it
started, on Ctrl-C too. Needs a checkout of the repository (the servers live in tests/).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

DEMO_DIR = Path(os.environ.get("NUMPOLVILLE_DEMO_DIR", "data/demo"))
WAIT = 20.0  # seconds to wait for any one thing the bot should do


class People(Protocol):
    """Simulated people on one network: what the scene needs, whatever the network."""

    network: str

    def post(self, who: str, text: str, link: str | None = None) -> str: ...
    def prompt_for(self, post: str) -> str | None: ...
    def reply(self, who: str, to: str, root: str, text: str) -> str: ...
    def delete(self, who: str, post: str) -> None: ...


def scene(people: People, say: Callable[[str], None]) -> None:
    """The same little story on each network."""
    net = people.network
    say(f"[{net}] alice (follows the bot) shares a link with #numpolville")
    alice = people.post("alice", "Atelier « premiers pas numériques » au centre social des Tilleuls "
                        "#numpolville", "https://example.org/atelier-tilleuls")
    prompt = _wait(lambda: people.prompt_for(alice), f"the bot's prompt to alice on {net}")
    say(f"[{net}] bob answers alice's prompt with 1: not his post, ignored")
    people.reply("bob", prompt, alice, "1")
    say(f"[{net}] alice answers: c'est plutôt du contexte (2)")
    people.reply("alice", prompt, alice, "2")
    say(f"[{net}] carol (not a follower) posts: recorded, not prompted")
    people.post("carol", "Rapport sur l'illectronisme dans les quartiers #NumPolVille",
                "https://example.org/rapport-illectronisme")
    say(f"[{net}] dan posts, then answers the prompt with « stop »: opted out")
    dan = people.post("dan", "Une appli pour les démarches en ligne #numpolville")
    dan_prompt = _wait(lambda: people.prompt_for(dan), f"the bot's prompt to dan on {net}")
    people.reply("dan", dan_prompt, dan, "stop")
    say(f"[{net}] alice posts by mistake, then deletes: withdrawn")
    oops = people.post("alice", "Oups, mauvais lien #numpolville")
    _wait(lambda: people.prompt_for(oops), f"the bot's prompt to alice's second post on {net}")
    people.delete("alice", oops)


def _wait(fn: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"gave up waiting for {what}")


class MastodonPeople:
    network = "mastodon"

    def __init__(self, server: Any) -> None:
        self.server = server

    def post(self, who: str, text: str, link: str | None = None) -> str:
        return self.server.post(who, f"{text} {link}" if link else text)["id"]

    def prompt_for(self, post: str) -> str | None:
        return next((s.id for s in self.server.statuses("numpolbot") if s.in_reply_to_id == post), None)

    def reply(self, who: str, to: str, root: str, text: str) -> str:
        return self.server.post(who, f"@numpolbot {text}", visibility="unlisted",
                                in_reply_to_id=to)["id"]

    def delete(self, who: str, post: str) -> None:
        self.server.delete(post)


class BlueskyPeople:
    network = "bluesky"

    def __init__(self, net: Any) -> None:
        self.net = net
        self.clients = {name: net.client(name) for name in ("alice", "bob", "carol", "dan")}
        self.bot_did = net.did("bot")
        self.refs: dict[str, Any] = {}

    def post(self, who: str, text: str, link: str | None = None) -> str:
        from atproto import client_utils, models

        builder = client_utils.TextBuilder()
        for word in text.split(" "):
            if word.startswith("#"):
                builder.tag(word, word[1:])
            else:
                builder.text(word)
            builder.text(" ")
        embed = None
        if link:
            embed = models.AppBskyEmbedExternal.Main(external=models.AppBskyEmbedExternal.External(
                uri=link, title=text.split("#")[0].strip(), description=""))
        created = self.clients[who].send_post(builder, embed=embed)
        self.refs[created.uri] = created
        self.net.wait_visible(created.uri)  # replies to an unindexed post lose their notification
        return created.uri

    def prompt_for(self, post: str) -> str | None:
        client = self.clients["alice"]
        records = client.com.atproto.repo.list_records(
            {"repo": self.bot_did, "collection": "app.bsky.feed.post", "limit": 100})
        for r in records.records:
            reply = getattr(r.value, "reply", None)
            if reply and reply.parent.uri == post:
                self.refs[r.uri] = r
                return r.uri
        return None

    def reply(self, who: str, to: str, root: str, text: str) -> str:
        from atproto import models

        def ref(uri: str) -> Any:
            return models.create_strong_ref(self.refs[uri])

        self.net.wait_visible(to)
        created = self.clients[who].send_post(
            text, reply_to=models.AppBskyFeedPost.ReplyRef(parent=ref(to), root=ref(root)))
        return created.uri

    def delete(self, who: str, post: str) -> None:
        self.clients[who].delete_post(post)


# ---- the shell: servers, the bot process, the live view -----------------------------------------

class BotProcess:
    """`numpolville run --log-format json` in a subprocess, its log lines kept for the view."""

    def __init__(self, config: Path, secrets: dict[str, str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **secrets}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config), "--log-format", "json"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines: deque[dict[str, Any]] = deque(maxlen=18)
        self.log = (DEMO_DIR / "bot.log").open("w", encoding="utf-8")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.write(line)
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"level": "info", "logger": "", "message": line.rstrip()}
            self.lines.append(entry)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _view(bot: BotProcess, db: Path, story: deque[str]) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    actions = Table(show_header=True, header_style="bold", expand=True, box=None)
    actions.add_column("time", width=8)
    actions.add_column("what the bot did, and why", overflow="fold")
    for e in list(bot.lines):
        style = {"warning": "yellow", "error": "red"}.get(e.get("level", ""), "")
        actions.add_row(e.get("time", "")[11:19], e.get("message", ""), style=style)
    counts = Table(title="items", expand=True)
    for col in ("network", "category", "state", "n"):
        counts.add_column(col)
    for row in _counts(db):
        counts.add_row(*map(str, row))
    return Group(Panel("\n".join(story) or "…", title="the scene"), Panel(actions, title="the bot"), counts)


def _counts(db: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT network, coalesce(category, '—'), state, count(*) FROM items "
                                "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    except sqlite3.Error:
        return []


def _write_config(mastodon: Any, bsky: Any, site_port: int) -> Path:
    bot = bsky.accounts["bot"]
    config = DEMO_DIR / "numpolville.toml"
    config.write_text(f"""# Written by `make demo`; thrown away on the next run.
database = "{DEMO_DIR / 'numpolville.db'}"

[mastodon]
enabled = true
api_base_url = "{mastodon.base_url}"
poll_interval = 1

[bluesky]
enabled = true
service = "{bsky.pds_url}"
handle = "{bot['handle']}"
source = "firehose"
firehose_url = "{bsky.firehose_url}"

[policy]
max_prompts_per_author_per_day = 20

[web]
enabled = true
bind = "127.0.0.1:{site_port}"
public_url = "http://127.0.0.1:{site_port}"
""", encoding="utf-8")
    return config


def _people_on_mastodon(server: Any) -> str:
    """The bot's account and four people; returns the bot's token."""
    _, token = server.create_account("numpolbot", note="Je range les partages #numpolville.", bot=True)
    for name, note in (("alice", "Cheffe de projet politique de la ville"), ("bob", "Médiateur numérique"),
                       ("carol", "Centre de ressources"), ("dan", "EPN des Tilleuls")):
        server.create_account(name, note=note)
    for name in ("alice", "bob", "dan"):
        server.follow(name, "numpolbot")
    return token


def _people_on_bluesky(net: Any) -> None:
    bot = net.did("bot")
    for name in ("alice", "bob", "dan"):
        net.client(name).follow(bot)


def main() -> None:
    from rich.console import Console
    from rich.live import Live

    sys.path.insert(0, os.getcwd())  # the servers live in the repository's tests/
    from tests.bsky_network import BlueskyNetwork
    from tests.mastodon_server import MastodonServer

    console = Console()
    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    story: deque[str] = deque(maxlen=12)
    mastodon = MastodonServer().start()
    bsky = BlueskyNetwork()
    bot: BotProcess | None = None
    try:
        with console.status("Starting the local Mastodon server and Bluesky network (PLC, PDS, AppView)…"):
            bsky.start()
            token = _people_on_mastodon(mastodon)
            _people_on_bluesky(bsky)
        site_port = _free_port()
        config = _write_config(mastodon, bsky, site_port)
        bot = BotProcess(config, {"NUMPOLVILLE_MASTODON_TOKEN": token,
                                  "NUMPOLVILLE_BLUESKY_PASSWORD": bsky.accounts["bot"]["password"]})
        db = DEMO_DIR / "numpolville.db"
        with console.status("Starting the bot…"):
            _wait(lambda: _listening(db), "the bot to listen", timeout=60)
        with Live(_view(bot, db, story), console=console, refresh_per_second=4) as live:
            done = threading.Event()

            def refresh() -> None:
                while not done.wait(0.25):
                    live.update(_view(bot, db, story))

            threading.Thread(target=refresh, daemon=True).start()
            scene(MastodonPeople(mastodon), story.append)
            scene(BlueskyPeople(bsky), story.append)
            story.append("waiting for the last actions…")
            _wait(lambda: _settled(db), "the bot to finish its actions")
            done.set()
            live.update(_view(bot, db, story))
        _show_site(console, site_port)
        bot.stop()
        _finish(console, config, started)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted: stopping everything.[/]")
        raise SystemExit(130) from None
    finally:
        if bot:
            bot.stop()
        mastodon.stop()
        bsky.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _show_site(console: Any, port: int) -> None:
    """The veille's site, which `run` served all along ([web] enabled): what its pages say now."""
    import urllib.request

    base = f"http://127.0.0.1:{port}"
    for path in ("/", "/category/contexte", "/feeds/all.atom"):
        with urllib.request.urlopen(base + path, timeout=10) as answer:  # noqa: S310 - our own site
            body = answer.read().decode("utf-8")
        console.print(f"Site served at {base}{path}: HTTP {answer.status}, {len(body):,} bytes"
                      + (", the Atelier share is on it" if "Atelier" in body else ""), highlight=False)
    console.print(f"(`numpolville serve --config {DEMO_DIR / 'numpolville.toml'}` serves it again.)",
                  highlight=False)


def _listening(db: Path) -> bool:
    """All three sources (Mastodon tag and mentions, Bluesky firehose) are up."""
    import sqlite3

    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            running = conn.execute("SELECT count(*) FROM sources WHERE state = 'running'").fetchone()[0]
    except sqlite3.Error:
        return False
    if running >= 3:
        time.sleep(1.0)  # the firehose client gives no "connected" signal
    return bool(running >= 3)


def _settled(db: Path) -> bool:
    """Every decided action done, and both networks' withdrawn posts seen."""
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        pending = conn.execute("SELECT count(*) FROM intents WHERE state = 'pending'").fetchone()[0]
        deleted = conn.execute("SELECT count(*) FROM items WHERE state = 'deleted'").fetchone()[0]
        classified = conn.execute("SELECT count(*) FROM items WHERE state = 'classified'").fetchone()[0]
    return pending == 0 and deleted == 2 and classified == 2


def _finish(console: Any, config: Path, started: float) -> None:
    since = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    for fmt in ("html", "md"):
        out = DEMO_DIR / f"digest.{fmt}"
        subprocess.run([sys.executable, "-m", "bot", "digest", "--config", str(config), "--format", fmt,
                        "--since", since, "--out", str(out)], check=True)
        console.print(f"Digest written: [bold]{out.resolve()}[/]")
    subprocess.run([sys.executable, "-m", "bot", "stats", "--config", str(config)], check=True)
    console.print(f"Demo done in {time.monotonic() - started:.0f} s. The bot's log: {DEMO_DIR / 'bot.log'}; "
                  f"browse the database with `numpolville browse --config {config}`.")


if __name__ == "__main__":
    main()
