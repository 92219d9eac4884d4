"""The moderation desk over real HTTP: sign-in, sessions, CSRF, the rate limit, every decision
through the rules (state, intents, history), and the `moderator` commands. The effects on a
network are in test_web_mastodon.py."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from itertools import count

import pytest
from test_digest_data import add, utc
from web_server import MODERATOR, PASSWORD, csrf

from bot.web.auth import RateLimit, add_moderator

_numbers = count(1000)


def new_item(site, state: str = "seen", category: str | None = None, handle: str = "zoe@piaille.example",
             title: str = "") -> tuple[str, str, str]:
    """A fresh item of the site's store: (network, uri, title)."""
    n = next(_numbers)
    title = title or f"Partage du desk {n}"
    post = add(site.store, n, "mastodon", handle, f"Texte {n} #numpolville", utc(2025, 3, 28, 12, n % 60),
               state=state, category=category, link=f"https://desk.example/{n}", title=title)
    return post.network, post.uri, title


def row(site, uri: str) -> dict:
    return site.store._one("SELECT state, category, classified_by FROM items WHERE uri = ?", uri)


def pending(site, uri: str) -> list[str]:
    return [r["kind"] for r in site.store._all(
        "SELECT kind FROM intents WHERE uri = ? AND state = 'pending' ORDER BY created_at", uri)]


def test_without_a_session_every_desk_path_goes_to_login(site):
    with site.client() as c:
        for path in ["/moderation/", "/moderation/history", "/moderation/authors",
                     "/moderation/anything/at/all"]:
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
        r = c.post("/moderation/withdraw", data={"network": "mastodon", "uri": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert c.get("/moderation").status_code in (303, 307)


def test_sign_in_and_out(site):
    with site.client() as c:
        page = c.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        token = csrf(page.text)
        bad = c.post("/login", data={"username": MODERATOR, "password": "wrong", "csrf": token})
        assert bad.status_code == 401 and "incorrect" in bad.text
        assert c.post("/login", data={"username": MODERATOR, "password": PASSWORD}).status_code == 403
        ok = c.post("/login", data={"username": MODERATOR, "password": PASSWORD, "csrf": token,
                                    "next": "/moderation/history"})
        assert ok.status_code == 303 and ok.headers["location"] == "/moderation/history"
        desk = c.get("/moderation/")
        assert desk.status_code == 200 and f"Connecté·e : {MODERATOR}" in desk.text
        assert token not in desk.text, "a new session (and token) after signing in"
        # An open redirect is refused.
        c2 = site.client()
        t2 = csrf(c2.get("/login").text)
        r = c2.post("/login", data={"username": MODERATOR, "password": PASSWORD, "csrf": t2,
                                    "next": "//evil.example/"})
        assert r.headers["location"] == "/moderation/"
        assert c.post("/logout", data={}).status_code == 403
        assert c.post("/logout", data={"csrf": csrf(desk.text)}).status_code == 303
        assert c.get("/moderation/").status_code == 303
    for text in (PASSWORD, "test-secret"):
        assert text.encode() not in site.store.path.read_bytes()


def test_five_failures_a_minute_answer_429(site):
    add_moderator(site.store, "dominique", "mot de passe sûr")
    site.app.state.login_limit = RateLimit()  # earlier tests' failures from 127.0.0.1 forgotten
    try:
        with site.client() as c:
            token = csrf(c.get("/login").text)
            for _ in range(5):
                assert c.post("/login", data={"username": "dominique", "password": "non",
                                              "csrf": token}).status_code == 401
            r = c.post("/login", data={"username": "dominique", "password": "mot de passe sûr",
                                       "csrf": token})
            assert r.status_code == 429 and "Trop de tentatives" in r.text
        # Per address too; X-Forwarded-For is not believed (no trusted proxy): the same address.
        site.app.state.login_limit = RateLimit()
        with site.client() as c:
            token = csrf(c.get("/login").text)
            for n in range(5):
                c.post("/login", data={"username": f"nobody{n}", "password": "x", "csrf": token},
                       headers={"X-Forwarded-For": f"203.0.113.{n}"})
            assert c.post("/login", data={"username": MODERATOR, "password": PASSWORD, "csrf": token},
                          headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    finally:
        site.app.state.login_limit = RateLimit()


def test_csrf_refused_with_403(site):
    network, uri, _ = new_item(site)
    with closing(site.login()) as c:
        for data in ({}, {"csrf": "forged"}, {"csrf": ""}):
            r = c.post("/moderation/withdraw", data={"network": network, "uri": uri, **data})
            assert r.status_code == 403, data
        huge = c.post("/moderation/withdraw", data={"network": network, "uri": "x" * 100_000})
        assert huge.status_code == 413
        # Another session's token is worth nothing here.
        with closing(site.login()) as c2:
            other = csrf(c2.get("/moderation/").text)
        assert c.post("/moderation/withdraw", data={"network": network, "uri": uri,
                                                    "csrf": other}).status_code == 403
    assert row(site, uri)["state"] == "seen"


def test_every_decision_goes_through_the_rules(site):
    network, uri, title = new_item(site)
    with closing(site.login()) as c:
        desk = c.get("/moderation/")
        token = csrf(desk.text)
        assert title in desk.text, "the queue lists what waits for a decision"

        def post(action: str, **data: str) -> None:
            r = c.post(f"/moderation/{action}", data={"csrf": token, "back": "/moderation/", **data})
            assert r.status_code == 303 and r.headers["location"] == "/moderation/", r.text

        post("classify", network=network, uri=uri, category="initiative")
        assert row(site, uri) == {"state": "classified", "category": "initiative", "classified_by": MODERATOR}
        assert pending(site, uri) == ["boost"], "the boost is an intent for the bot's effect worker"
        assert title in c.get("/category/initiative").text and title not in c.get("/moderation/").text
        assert title in c.get("/feeds/initiative.atom").text

        post("withdraw", network=network, uri=uri)
        assert row(site, uri)["state"] == "withdrawn"
        assert title not in c.get("/category/initiative").text
        assert title not in c.get("/feeds/all.json").text
        assert title in c.get("/moderation/withdrawn").text

        post("restore", network=network, uri=uri)
        assert row(site, uri)["state"] == "classified"
        assert title in c.get("/category/initiative").text

        author = site.store._one("SELECT author_id FROM items WHERE uri = ?", uri)["author_id"]
        post("block", network=network, author_id=author)
        assert title not in c.get("/category/initiative").text, "a blocked author is never listed"
        assert "zoe@piaille.example" in c.get("/moderation/authors").text
        post("unblock", network=network, author_id=author)
        assert title in c.get("/category/initiative").text

        # Refused: unknown item, category, network, action.
        refused = [("classify", {"network": network, "uri": "nope", "category": "projet"}, 404),
                   ("classify", {"network": network, "uri": uri, "category": "nope"}, 400),
                   ("withdraw", {"network": "myspace", "uri": uri}, 400),
                   ("explode", {"network": network, "uri": uri}, 404)]
        for action, data, code in refused:
            assert c.post(f"/moderation/{action}", data={"csrf": token, **data}).status_code == code

        history = c.get("/moderation/history").text
    rows = site.store.decisions(10)
    mine = [r for r in rows if r["uri"] == uri or r["author_id"] == author]
    assert [r["reason"] for r in mine] == ["unblock", "block", "restore", "withdraw", "classify"]
    assert all(r["by"] == MODERATOR for r in mine) and mine[-1]["category"] == "initiative"
    for word in ("classé", "retiré", "rétabli", "auteur bloqué", "auteur débloqué", MODERATOR):
        assert word in history, word


def test_a_blocked_author_is_never_prompted(site):
    """The block is the rules' business: a later tagged post is recorded, never prompted or boosted."""
    from bot import model as m
    from bot.curator import Curator

    network, uri, _ = new_item(site, handle="yann@piaille.example")
    author = site.store._one("SELECT author_id FROM items WHERE uri = ?", uri)["author_id"]
    curator = Curator(site.config, site.store)
    curator.handle(m.ModeratorBlock("mastodon", author, "yann@piaille.example", "test"))
    try:
        post = m.Post("mastodon", "mastodon://post/blocked-1", "ref-b1", "https://piaille.example/b1",
                      m.Author("mastodon", author, "yann@piaille.example", follows_bot=True),
                      "Encore #numpolville #projet", utc(2025, 3, 28, 13),
                      tags=frozenset({"numpolville", "projet"}))
        assert curator.handle(m.PostSeen(post)) == []
        assert row(site, post.uri)["state"] == "seen"
    finally:
        curator.handle(m.ModeratorBlock("mastodon", author, "yann@piaille.example", "test", blocked=False))


def test_a_removed_moderator_loses_the_session_at_once(site):
    add_moderator(site.store, "eloise", "encore un mot de passe")
    with closing(site.login("eloise", "encore un mot de passe")) as c:
        assert c.get("/moderation/").status_code == 200
        assert site.store.remove_moderator("eloise")
        assert c.get("/moderation/").status_code == 303


def run_cli(db, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    config = db.with_suffix(".toml")
    config.write_text(f'database = "{db}"\n', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "bot", *args, "--config", str(config)], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=db.parent)


def test_moderator_commands(tmp_path):
    db = tmp_path / "m.db"
    added = run_cli(db, "moderator", "add", "gaelle", "--password-stdin", stdin="un long secret\n")
    assert added.returncode == 0, added.stderr
    assert run_cli(db, "moderator", "add", "x", "--password-stdin", stdin="court\n").returncode == 2
    listed = run_cli(db, "moderator", "list")
    assert listed.stdout.split("\t")[0] == "gaelle" and "secret" not in listed.stdout
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM moderators").fetchone()
    assert stored.startswith("$argon2id$") and "un long secret" not in db.read_bytes().decode("latin-1")
    assert run_cli(db, "moderator", "remove", "gaelle").returncode == 0
    assert run_cli(db, "moderator", "remove", "gaelle").returncode == 1
    assert run_cli(db, "moderator", "list").stdout == ""


@pytest.mark.parametrize("command", ["run", "serve"])
def test_run_and_serve_without_a_config_file_point_to_init(tmp_path, command):
    out = subprocess.run([sys.executable, "-m", "bot", command], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert out.returncode == 2
    assert "no configuration file found" in out.stderr and "numpolville init" in out.stderr


def test_the_desk_escapes_hostile_posts_and_handles(site):
    """The digest tests' payloads (classified items of hostile handles) on every desk page, one of
    their authors blocked so the authors' page and the history show a hostile handle too."""
    import lxml.html
    from test_digest import assert_clean_html

    hostile = site.store._one("SELECT network, author_id FROM items WHERE author_handle LIKE 'h1%'")
    with closing(site.login()) as c:
        token = csrf(c.get("/moderation/").text)
        c.post("/moderation/block", data={"csrf": token, **hostile})
        try:
            for path in ["/moderation/", "/moderation/classified", "/moderation/withdrawn",
                         "/moderation/authors", "/moderation/history"]:
                text = c.get(path).text
                low = text.lower()
                assert "<script" not in low and "<img" not in low and "onerror=" not in low, path
                assert_clean_html(lxml.html.document_fromstring(text), path, site=True)
            assert "h1&#34;&gt;&lt;script&gt;" in c.get("/moderation/authors").text
        finally:
            c.post("/moderation/unblock", data={"csrf": token, **hostile})


def test_config_check_shows_the_web_section():
    from bot.cli import effective_settings
    from bot.config import parse

    rows = dict(effective_settings(parse({"web": {"enabled": True, "public_url": "https://v.example",
                                                  "trusted_proxies": ["10.0.0.1"]}})))
    assert rows["web.enabled"] == "True" and rows["web.public_url"] == "https://v.example"
    assert rows["web.bind"] == "127.0.0.1:8080" and rows["web.trusted_proxies"] == "10.0.0.1"


def test_a_decision_the_rules_decline_is_told(site):
    """A restore while the withdrawal's unboost is still under way: declined, and said so."""
    network, uri, _ = new_item(site, state="withdrawn", category="projet")
    site.store._exec("UPDATE items SET boosted_at = '2025-03-28T12:00:00+00:00' WHERE uri = ?", (uri,))
    with closing(site.login()) as c:
        token = csrf(c.get("/moderation/").text)
        r = c.post("/moderation/restore", data={"csrf": token, "network": network, "uri": uri,
                                                "back": "/moderation/withdrawn"})
        assert r.status_code == 303 and row(site, uri)["state"] == "withdrawn"
        assert "Décision non appliquée" in c.get("/moderation/withdrawn").text
        assert "Décision non appliquée" not in c.get("/moderation/withdrawn").text  # said once
        site.store._exec("UPDATE items SET boosted_at = NULL WHERE uri = ?", (uri,))  # unboost done
        c.post("/moderation/restore", data={"csrf": token, "network": network, "uri": uri})
        assert row(site, uri)["state"] == "classified"
        assert "Décision non appliquée" not in c.get("/moderation/withdrawn").text
