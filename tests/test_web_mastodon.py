"""The desk's decisions reach the network: the real `numpolville run` process with `[web]
enabled` against the local Mastodon-API server; a moderator classifies a prompted post (a boost
appears on the server) and withdraws a classified one (it is unboosted), then SIGTERM stops the
bot and its site cleanly."""

from __future__ import annotations

import subprocess
import sys

import httpx
from test_faults_support import (
    BOT,
    TOKEN_ENV,
    BotProcess,
    listening,
    populate,
    query,
    wait_for,
    write_config,
)
from web_server import csrf, free_port


def test_desk_decisions_boost_and_unboost_on_mastodon(server, tmp_path):
    token = populate(server, ["user0", "user1"])
    port = free_port()
    config = write_config(tmp_path, server, extra=f'\n[web]\nenabled = true\nbind = "127.0.0.1:{port}"\n')
    db = tmp_path / "bot.db"
    added = subprocess.run([sys.executable, "-m", "bot", "moderator", "add", "camille", "--password-stdin",
                            "--config", str(config)], input="phrase de passe\n", capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    bot = BotProcess(config, tmp_path / "bot.log", {TOKEN_ENV: token})
    site = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_for(lambda: listening(server, db), timeout=30, what="the bot to listen")
        wait_for(lambda: _answers(site), timeout=15, what="the site to answer")
        asked = server.post("user0", "Une ressource sur la médiation https://example.org/a #numpolville")
        auto = server.post("user1", "Un projet https://example.org/b #numpolville #projet")
        uri = wait_for(lambda: _uri(db, asked["id"], "prompted"), timeout=20, what="the prompt")
        auto_uri = wait_for(lambda: _uri(db, auto["id"], "classified"), timeout=20, what="the auto post")
        bot_id = server.account(BOT).id
        wait_for(lambda: (bot_id, auto["id"]) in server.reblogs(), timeout=20, what="the first boost")

        login = site.get("/login")
        r = site.post("/login", data={"username": "camille", "password": "phrase de passe",
                                      "csrf": csrf(login.text)})
        assert r.status_code == 303
        token_ = csrf(site.get("/moderation/").text)
        r = site.post("/moderation/classify", data={"csrf": token_, "network": "mastodon", "uri": uri,
                                                    "category": "contexte"})
        assert r.status_code == 303
        wait_for(lambda: (bot_id, asked["id"]) in server.reblogs(), timeout=20,
                 what="the boost of the classified post")
        r = site.post("/moderation/withdraw", data={"csrf": token_, "network": "mastodon", "uri": auto_uri})
        assert r.status_code == 303
        wait_for(lambda: (bot_id, auto["id"]) not in server.reblogs(), timeout=20, what="the unboost")
        # the server logs a request after answering it: the unboost may be seen a moment before
        wait_for(lambda: server.requests("POST", r"/unreblog$"), timeout=5, what="the unboost logged")
        assert len(server.requests("POST", r"/unreblog$")) == 1
        assert "médiation" in site.get("/feeds/contexte.atom").text
        assert "example.org/b" not in site.get("/feeds/all.atom").text
        assert query(db, "SELECT count(*) FROM intents WHERE state != 'done'")[0][0] == 0
    finally:
        site.close()
        code, seconds = bot.signal(15)
    assert code == 0 and seconds < 8, (code, seconds, (tmp_path / "bot.log").read_text()[-2000:])
    assert "phrase de passe" not in (tmp_path / "bot.log").read_text()


def test_serve_alone_and_the_running_bot_carries_out_its_decisions(server, tmp_path):
    """`serve` in a process of its own: its decisions are intents left pending in the store, which
    the running bot's effect worker takes up within seconds; SIGTERM stops `serve` cleanly."""
    token = populate(server, ["user0"])
    port = free_port()
    config = write_config(tmp_path, server, extra=f'\n[web]\nbind = "127.0.0.1:{port}"\n')
    db = tmp_path / "bot.db"
    subprocess.run([sys.executable, "-m", "bot", "moderator", "add", "camille", "--password-stdin",
                    "--config", str(config)], input="phrase de passe\n", check=True, timeout=60,
                   capture_output=True, text=True, cwd=tmp_path)
    bot = BotProcess(config, tmp_path / "bot.log", {TOKEN_ENV: token})
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--config", str(config)],
                             stdout=log, stderr=log, cwd=tmp_path)
    site = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_for(lambda: listening(server, db), timeout=30, what="the bot to listen")
        wait_for(lambda: _answers(site), timeout=15, what="serve to answer")
        assert site.get("/healthz").json()["healthy"], "serve reads the running bot's health"
        status = server.post("user0", "À classer depuis le bureau https://example.org/c #numpolville")
        uri = wait_for(lambda: _uri(db, status["id"], "prompted"), timeout=20, what="the prompt")
        login = site.get("/login")
        site.post("/login", data={"username": "camille", "password": "phrase de passe",
                                  "csrf": csrf(login.text)})
        r = site.post("/moderation/classify", data={"csrf": csrf(site.get("/moderation/").text),
                                                    "network": "mastodon", "uri": uri, "category": "projet"})
        assert r.status_code == 303
        bot_id = server.account(BOT).id
        wait_for(lambda: (bot_id, status["id"]) in server.reblogs(), timeout=10,
                 what="the running bot to boost what serve decided")
    finally:
        site.close()
        serve.send_signal(15)
        code = serve.wait(10)
        log.close()
        bot.stop()
    assert code == 0, (tmp_path / "serve.log").read_text()[-2000:]


def _answers(site: httpx.Client) -> bool:
    try:
        return site.get("/healthz").status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _uri(db, status_id: str, state: str) -> str | None:  # type: ignore[no-untyped-def]
    rows = query(db, "SELECT uri FROM items WHERE ref = ? AND state = ?", status_id, state)
    return rows[0][0] if rows else None
