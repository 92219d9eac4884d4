"""The public site over real HTTP (uvicorn on 127.0.0.1): pages, search, feeds (read back with
feedparser), conditional GET, every exclusion, every XSS payload, the security headers."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import feedparser
import lxml.etree
import lxml.html
import pytest
from test_digest import assert_clean_html
from web_server import OLD, csrf

from bot import model as m
from bot.health import assess

PAGES = ["/", "/archive/", "/archive/2025-W13", "/archive/2025-W12", "/category/projet",
         "/category/contexte", "/search?q=texte", "/search?q=alert", "/about", "/login",
         "/embed/projet", "/embed/all"]
FEEDS = [f"/feeds/{name}.{fmt}" for name in ("all", "projet", "contexte") for fmt in ("atom", "rss", "json")]
LEFT_OUT = ["withdrawn.example", "skipped.example", "deleted.example", "optedout.example",
            "unauthenticated.example", "noindex.example", "private.example"]


def dom(text: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(text)


def titles(text: str) -> list[str]:
    return [h.text_content().strip() for h in dom(text).xpath("//li[contains(@class,'entry')]/h3")]


def test_the_pages_answer_in_french_with_their_content(site):
    with site.client() as c:
        home = c.get("/")
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
        page = dom(home.text)
        assert page.get("lang") == "fr"
        assert "Semaine 13 · du 24 au 30 mars 2025" in page.text_content()
        assert "Médiation numérique à Blois : le bilan d'une année" in page.text_content()
        assert [h.text_content().split(" (")[0] for h in page.find_class("category")] == [
            "Projet", "Contexte", "Initiative", "Prospective", "À classer"]
        assert not page.xpath("//script"), "no page needs a script"

        archive = dom(c.get("/archive/").text)
        links = archive.xpath("//ul[@class='archive']/li/a")
        # From this week back to the first item's (2025-W06, 12 February), newest first.
        assert links[0].get("href") == "/archive/2025-W13" and links[-1].get("href") == "/archive/2025-W06"
        assert len(links) == 8 and links[0].text_content() == "Semaine 13 · du 24 au 30 mars 2025"
        w12 = c.get("/archive/2025-W12").text
        assert "Un projet de la semaine 12" in w12 and "Médiation numérique à Blois" not in w12
        for missing in ("/archive/2025-W14", "/archive/2025-W01", "/archive/2025-W99", "/archive/x",
                        "/category/nope", "/nowhere", "/feeds/nope.atom", "/feeds/all.xml"):
            assert c.get(missing).status_code == 404, missing

        about = dom(c.get("/about").text).text_content()
        for needed in ("#numpolville", "Projet", "Contexte", "Initiative", "Prospective", "stop",
                       "#nobot", "effacement"):
            assert needed in about, needed


def test_category_pages_newest_first_and_paginated(site):
    with site.client() as c:
        first = c.get("/category/prospective")
        names = titles(first.text)
        assert len(names) == 20 and names[0].startswith("Et si les conseils citoyens")
        assert names[1] == "Archive 3"  # 11 March, then February's
        assert names[2:] == [f"Prospective ancienne {n}" for n in range(OLD - 1, OLD - 19, -1)]
        nxt = dom(first.text).xpath("//a[@rel='next']/@href")[0]
        assert nxt == "/category/prospective?page=2"
        second = c.get(nxt).text
        assert titles(second)[-1] == "Prospective ancienne 0" and len(titles(second)) == OLD + 2 - 20
        assert not dom(second).xpath("//a[@rel='next']")
        assert dom(second).xpath("//a[@rel='prev']/@href") == ["/category/prospective"]
        assert c.get("/category/prospective?page=abc").text == first.text  # not a number: page 1
        assert titles(c.get("/category/prospective?page=9").text) == []


def test_search_ignores_accents_ranks_and_paginates(site):
    with site.client() as c:
        found = titles(c.get("/search", params={"q": "mediation"}).text)
        assert "Médiation numérique à Blois : le bilan d'une année" in found
        assert titles(c.get("/search", params={"q": "MÉDIATION blois"}).text) == [
            "Médiation numérique à Blois : le bilan d'une année"]
        quartier = titles(c.get("/search", params={"q": "quartier"}).text)
        assert quartier[:1] == ["Atelier numérique de quartier"]
        # Plurals and endings are ignored.
        assert "La fracture numérique dans les quartiers prioritaires" in quartier
        # By author, and by link.
        assert titles(c.get("/search", params={"q": "paula"}).text) == ["Atelier numérique de quartier"]
        assert "Observatoire des usages numériques 2025" in titles(
            c.get("/search", params={"q": "observatoire.example"}).text)
        # FTS syntax is taken as words: no error, nothing odd.
        for hostile in ('" OR *', "NOT", "a AND (b", '"""', "*", "NEAR(x y)"):
            assert c.get("/search", params={"q": hostile}).status_code == 200, hostile
        one = c.get("/search", params={"q": "ancienne"}).text
        assert len(titles(one)) == 20 and dom(one).xpath("//a[@rel='next']/@href") == [
            "/search?q=ancienne&page=2"]
        assert len(titles(c.get("/search?q=ancienne&page=2").text)) == OLD - 20
        assert "Aucun résultat" in c.get("/search", params={"q": "zzzzzz"}).text


def test_exclusions_never_appear_anywhere(site):
    with site.client() as c:
        for path in PAGES + FEEDS + ["/search?q=example", "/search?q=supprime", "/search?q=prive"]:
            text = c.get(path).text
            for domain in LEFT_OUT:
                assert domain not in text, (path, domain)


@pytest.mark.parametrize("path", PAGES + FEEDS)
def test_xss_payloads_are_escaped_everywhere(site, path):
    with site.client() as c:
        r = c.get(path)
    assert r.status_code == 200
    low = r.text.lower()
    assert "<script" not in low and "<img" not in low and "<iframe" not in low and "<svg onload" not in low
    assert "javascript:" not in low.replace("\\", ""), "a javascript: link survived"
    assert "onerror=" not in low and "onload=" not in low and "onmouseover=" not in low
    if path.startswith("/feeds/") and path.endswith(".json"):
        data = json.loads(r.text)
        for item in data["items"]:
            assert_clean_html(lxml.html.fragment_fromstring(item["content_html"], create_parent="div"), path)
    elif path.startswith("/feeds/"):
        for node in lxml.etree.fromstring(r.content).iter():
            if isinstance(node.tag, str) and node.text and "<" in node.text:
                assert_clean_html(lxml.html.fragment_fromstring(node.text, create_parent="div"), path)
    else:
        assert_clean_html(dom(r.text), path, site=True)


def test_payload_text_is_shown_as_text(site):
    with site.client() as c:
        text = dom(c.get("/search", params={"q": "texte"}).text).text_content()
    assert "Texte" in text  # the harmless words are kept


def test_only_embed_pages_may_be_framed(site):
    with site.client() as c:
        r = c.get("/embed/projet")
        assert c.get("/embed/nope").status_code == 404
    assert "frame-ancestors *" in r.headers["content-security-policy"]
    assert "script-src" not in r.headers["content-security-policy"]
    assert "x-frame-options" not in r.headers and r.headers["x-content-type-options"] == "nosniff"
    page = dom(r.text)
    names = [h.text_content().strip() for h in page.xpath("//li[@class='entry']/h2")]
    assert names[0] == "Même lien, partagé aussi côté Mastodon" and len(names) == 10
    assert all(a.get("target") == "_blank" for a in page.xpath("//li[@class='entry']//a"))


def test_security_headers_on_every_answer(site):
    with site.client() as c:
        for path in ["/", "/category/projet", "/feeds/all.atom", "/static/site.css", "/nowhere", "/login"]:
            h = c.get(path).headers
            csp = h["content-security-policy"]
            assert "script-src" not in csp and "default-src 'none'" in csp, path
            assert "style-src-elem 'self'" in csp, path  # no inline <style> element either
            assert "frame-ancestors 'none'" in csp and h["x-content-type-options"] == "nosniff", path
            assert h["x-frame-options"] == "DENY" and "server" not in h, path


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_feeds_are_valid_and_list_the_newest_classified_items(site, fmt):
    with site.client() as c:
        r = c.get(f"/feeds/projet.{fmt}")
        all_ = feedparser.parse(c.get(f"/feeds/all.{fmt}").content)
    assert r.headers["content-type"].split(";")[0] == {
        "atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}[fmt]
    if fmt == "json":
        data = json.loads(r.text)
        assert data["version"] == "https://jsonfeed.org/version/1.1"
        assert data["feed_url"].endswith("/feeds/projet.json") and data["items"]
        assert all(i["id"] and i["title"] and "date_published" in i for i in data["items"])
        items = [(i["title"], i["date_published"]) for i in data["items"]]
        assert all(i["tags"] == ["Projet"] for i in data["items"])
    else:
        parsed = feedparser.parse(r.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.feed.title == "La veille #numpolville — Projet"
        items = [(e.title, e.published) for e in parsed.entries]
        assert all(e.tags[0].term.casefold() == "projet" for e in parsed.entries)  # RSS: the label
        assert not all_.bozo and len(all_.entries) == 50  # the newest 50 of every category
    names = [t for t, _ in items]
    assert "Médiation numérique à Blois : le bilan d'une année" in names
    assert "Un projet de la semaine 12" in names
    assert names.index("Même lien, partagé aussi côté Mastodon") < names.index(
        "Un projet de la semaine 12"), "newest first"


def test_conditional_get_answers_304(site):
    with site.client() as c:
        first = c.get("/feeds/contexte.atom")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        again = c.get("/feeds/contexte.atom", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert c.get("/feeds/contexte.atom", headers={"If-None-Match": '"other"'}).status_code == 200
        assert c.get("/feeds/contexte.atom", headers={"If-Modified-Since": modified}).status_code == 304
        past = format_datetime(datetime.now(timezone.utc) - timedelta(days=3650), usegmt=True)
        assert c.get("/feeds/contexte.atom", headers={"If-Modified-Since": past}).status_code == 200
        assert c.get("/feeds/contexte.atom", headers={"If-Modified-Since": "garbage"}).status_code == 200


def test_a_withdrawal_shows_within_seconds_in_pages_and_feeds(site):
    """Through the rules, as the desk does; the feed's ETag changes, so a reader gets it."""
    from bot.curator import Curator

    title = "Observatoire des usages numériques 2025"
    uri = "bluesky://post/8"
    with site.client() as c:
        etag = c.get("/feeds/contexte.json").headers["etag"]
        assert title in c.get("/").text
        Curator(site.config, site.store).handle(m.ModeratorWithdrawal("bluesky", uri, "test"))
        try:
            assert title not in c.get("/feeds/contexte.json").text
            assert c.get("/feeds/contexte.json", headers={"If-None-Match": etag}).status_code == 200
            assert title not in c.get("/category/contexte").text
            assert title not in c.get("/search", params={"q": "observatoire"}).text
            deadline = time.monotonic() + 5
            while title in c.get("/").text:  # the digest page is cached for cache_seconds
                assert time.monotonic() < deadline, "the withdrawal did not reach /"
                time.sleep(0.1)
        finally:
            Curator(site.config, site.store).handle(m.ModeratorRestore("bluesky", uri, "test"))
        assert title in c.get("/feeds/contexte.json").text


def test_healthz_is_the_status_judgement(site):
    with site.client() as c:
        r = c.get("/healthz")
    expected = assess(site.store.health(), 300)
    assert r.status_code == (200 if expected["healthy"] else 503)
    assert r.json()["healthy"] is expected["healthy"] and r.json()["problem"] == expected["problem"]


def test_period_headings_read_as_dates():
    from datetime import date
    from zoneinfo import ZoneInfo

    from bot.digest.period import week_of
    from bot.digest.render import period_dates, period_label

    week = week_of(date(2026, 11, 25), ZoneInfo("Europe/Paris"))
    assert period_dates(week, "fr") == "du 23 au 29 novembre 2026"
    assert period_label(week, "fr") == "Semaine 48 · du 23 au 29 novembre 2026"
    assert period_dates(week_of(date(2026, 12, 30), ZoneInfo("Europe/Paris")), "fr") == (
        "du 28 décembre 2026 au 3 janvier 2027")
    assert period_dates(week, "en") == "23 to 29 November 2026"


def test_no_iso_interval_in_the_site_headings(site):
    with site.client() as c:
        page = dom(c.get("/").text)
    headings = " ".join(e.text_content() for e in page.xpath("//h1|//h2|//th|//ul[@class='archive']//a"))
    assert "2025-W" not in headings and "du 17 au 23 mars 2025" in headings


def test_doctor_checks_that_public_url_answers(site):
    from web_server import free_port

    from bot import doctor

    assert doctor.site(site.url).status == "pass"
    down = doctor.site(f"http://127.0.0.1:{free_port()}")
    assert down.status == "fail" and "does not answer" in down.detail and "numpolville serve" in down.fix
    assert doctor.site(site.url + "/about").status == "fail"  # something else answers there


def test_search_ranks_the_newest_matches_only(site, monkeypatch):
    """A word in nearly every item is not ranked over all of them (bench: seconds on 1M)."""
    monkeypatch.setattr("bot.store_web.SEARCH_WINDOW", 5)
    with site.client() as c:
        found = titles(c.get("/search", params={"q": "ancienne"}).text)
    assert sorted(found) == sorted(f"Prospective ancienne {n}" for n in range(OLD - 5, OLD))


@pytest.fixture(scope="module")
def english_site(site):
    """The same store in English, behind a trusted proxy, at an https public address."""
    from web_server import site_config

    from bot.web.app import create_app
    from bot.web.server import Background

    config = site_config(site.store.path, public_url="https://veille.example", title="Digest lab",
                         trusted_proxies=["127.0.0.1"])
    config = dataclasses.replace(config, language="en")
    served = Background(config, create_app(config, site.store, secret="s"), port=0).start()
    yield f"http://127.0.0.1:{served.port}"
    served.stop()


def test_english_https_site_behind_a_trusted_proxy(english_site, site):
    import httpx

    with httpx.Client(base_url=english_site, timeout=10) as c:
        home = dom(c.get("/").text)
        assert home.get("lang") == "en" and "Week 13 · 24 to 30 March 2025" in home.text_content()
        assert home.xpath("//p[@class='brand']/a")[0].text_content() == "Digest lab"
        assert "Take part" in c.get("/about").text
        assert "secure" in c.get("/login").headers["set-cookie"].lower()  # public_url is https
        assert c.get("/feeds/all.json").json()["feed_url"] == "https://veille.example/feeds/all.json"
        # X-Forwarded-For is believed from the trusted proxy: addresses are told apart. (The
        # cookie is Secure: the proxy's client speaks https, this one sends it by hand.)
        page = c.get("/login")
        token, cookie = csrf(page.text), page.headers["set-cookie"].split(";")[0]

        def sign_in(name: str, address: str) -> int:
            return c.post("/login", data={"username": name, "password": "x", "csrf": token},
                          headers={"X-Forwarded-For": address, "X-Forwarded-Proto": "https",
                                   "Cookie": cookie}).status_code

        assert [sign_in(f"nobody{n}", "203.0.113.9") for n in range(5)] == [401] * 5
        limited, other = sign_in("other", "203.0.113.9"), sign_in("other", "198.51.100.1")
    assert (limited, other) == (429, 401)


def test_a_taken_port_is_a_clear_error(site):
    import socket

    from bot.web.app import create_app
    from bot.web.server import Background

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"could not listen on 127.0.0.1:{port}"):
            Background(site.config, create_app(site.config, site.store, secret="s"), port=port).start()
