"""Digests: periods, content rules, every format (golden files), XSS, threads, exactly-once.

UPDATE_GOLDEN=1 pytest tests/test_digest.py rewrites tests/golden/ from the current output.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.etree
import lxml.html
import pytest
from markdown_it import MarkdownIt
from test_digest_data import NOW, add, build_store, clock, config, utc

from bot import model as m
from bot.digest import (
    FORMATS,
    build_digest,
    due_period,
    normalize_url,
    period_from_args,
    publish_digest,
    render,
    thread_texts,
    write_digest,
)
from bot.digest.period import last_full_week, week_of
from bot.digest.publish import graphemes, length, split_thread, truncate
from bot.store import Store

GOLDEN = Path(__file__).parent / "golden"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return build_store(tmp_path / "x.db")


def week13():
    return period_from_args(now=NOW, tz_name="Europe/Paris", week=True)


# ---- periods ------------------------------------------------------------------------------------

def test_week_is_the_last_full_iso_week_in_paris_across_dst():
    p = last_full_week(NOW, PARIS)
    assert p.key == "2025-W13"
    assert p.start == datetime(2025, 3, 24, tzinfo=PARIS) and p.end == datetime(2025, 3, 31, tzinfo=PARIS)
    # Summer time starts on Sunday 30 March: that week is 167 hours long, not 168.
    start, end = p.utc()  # (same-zone subtraction would count wall-clock time)
    assert (end - start).total_seconds() / 3600 == 167
    assert p.start.utcoffset().total_seconds() == 3600 and p.end.utcoffset().total_seconds() == 7200
    assert p.previous().key == "2025-W12" and p.previous().end == p.start
    # Late October: back to winter time, a 169-hour week.
    oct_ = week_of(datetime(2025, 10, 26).date(), PARIS)
    assert (oct_.utc()[1] - oct_.utc()[0]).total_seconds() / 3600 == 169
    # Sunday 23:59 in Paris is still "this week": the last full week is the one before.
    assert last_full_week(utc(2025, 3, 30, 21, 59), PARIS).key == "2025-W12"
    assert last_full_week(utc(2025, 3, 30, 22, 0), PARIS).key == "2025-W13"
    # ISO week-years: 29 December 2025 is in 2026-W01.
    assert last_full_week(utc(2026, 1, 5, 12), PARIS).key == "2026-W01"
    assert [q.key for q in p.history(3)] == ["2025-W11", "2025-W12", "2025-W13"]


def test_since_until_spans():
    p = period_from_args(now=NOW, tz_name="Europe/Paris", since="2025-03-24", until="2025-03-30")
    assert p.key == "2025-W13" and p.kind == "week"  # exactly a week: the same key as --week
    q = period_from_args(now=NOW, tz_name="Europe/Paris", since="2025-03-01", until="2025-03-15")
    assert q.key == "2025-03-01/2025-03-16" and q.previous().key == "2025-02-14/2025-03-01"
    with pytest.raises(ValueError):
        period_from_args(now=NOW, tz_name="Europe/Paris", since="2025-03-10", until="2025-03-01")
    with pytest.raises(ValueError):
        period_from_args(now=NOW, tz_name="Europe/Paris", since="last tuesday")


def test_due_period_is_the_last_week_after_the_scheduled_moment():
    s = "mon 09:00"
    assert due_period("", NOW, PARIS) is None
    assert due_period(s, utc(2025, 3, 31, 6, 59), PARIS) is None  # 08:59 in Paris (UTC+2 now)
    assert due_period(s, utc(2025, 3, 31, 7, 0), PARIS).key == "2025-W13"
    assert due_period(s, utc(2025, 4, 3, 12, 0), "Europe/Paris").key == "2025-W13"  # came back late
    assert due_period(s, utc(2025, 4, 6, 21, 59), PARIS).key == "2025-W13"  # Sunday 23:59
    assert due_period(s, utc(2025, 4, 7, 6, 0), PARIS) is None  # next Monday, 08:00
    assert due_period("ven 17:30", utc(2025, 3, 28, 16, 30), PARIS).key == "2025-W12"
    with pytest.raises(ValueError):
        due_period("monday at nine", NOW, PARIS)


# ---- content -------------------------------------------------------------------------------------

def test_url_normalisation():
    assert normalize_url("https://WWW.Example.org/a/?utm_source=x&id=3&utm_medium=y#top") == \
        "https://www.example.org/a?id=3"
    assert normalize_url("https://example.org/") == "https://example.org"
    assert normalize_url("https://example.org:443/x?fbclid=abc") == "https://example.org/x"
    assert normalize_url("javascript:alert(1)") is None
    assert normalize_url("data:text/html,<script>") is None
    assert normalize_url("/relative") is None


def test_one_entry_per_link_across_networks_and_exclusions(store):
    d = build_digest(store, config(), week13())
    assert [s.key for s in d.sections] == ["projet", "contexte", "initiative", "prospective", ""]
    assert d.sections[-1].label == "À classer"
    projet = d.sections[0].entries
    assert len(projet) == 1  # utm_*, fragment, trailing slash, host case and http/https: one link
    e = projet[0]
    assert e.link == "https://www.example.org/mediation"
    assert e.title == "Médiation numérique à Blois : le bilan d'une année"
    assert [(s.handle, s.network) for s in e.sharers] == [
        ("alice@piaille.example", "mastodon"), ("bob.bsky.social", "bluesky"),
        ("claire@mastodon.example", "mastodon")]
    assert e.sharers[1].url == "https://bsky.example/@bob.bsky.social/2"
    # A post without a link is an entry of its own, titled by its first words.
    (prosp,) = d.sections[3].entries
    assert prosp.link is None and prosp.title.startswith("Et si les conseils citoyens")
    assert prosp.url == "https://bsky.example/@eve.bsky.social/5"
    everything = json.dumps(json.loads(render(d, config(), "json")))
    for left_out in ("withdrawn", "skipped", "deleted", "optedout", "unauthenticated", "noindex",
                     "private", "late.example"):
        assert left_out + ".example" not in everything and left_out not in everything, left_out
    # Sunday 23:30 in Paris (summer time) is in; Monday 00:30 is not.
    assert "observatoire.example/2025" in everything


def test_counts_change_and_series(store):
    d = build_digest(store, config(), week13())
    assert {s.key: (s.count, s.previous) for s in d.sections} == {
        "projet": (1, 1), "contexte": (2, 2), "initiative": (1, 0), "prospective": (1, 0), "": (1, 1)}
    assert (d.total, d.previous_total) == (6, 4)
    assert d.networks == {"mastodon": 4, "bluesky": 4}
    assert d.previous_networks == {"mastodon": 2, "bluesky": 2}
    assert d.contributors == 7
    assert [p.period.key for p in d.series][0] == "2025-W06" and len(d.series) == 8
    assert [p.total for p in d.series] == [0, 1, 0, 0, 3, 5, 4, 6]


def test_english_labels(store):
    from bot.config import parse
    c = parse({"language": "en"}, "(test)")
    d = build_digest(store, c, week13())
    assert d.sections[-1].label == "To sort" and d.sections[3].label == "Foresight"
    assert "Week 13" in render(d, c, "md")


# ---- formats: golden files -----------------------------------------------------------------------

def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        if not os.environ.get("UPDATE_GOLDEN") and os.environ.get("CI"):
            pytest.fail(f"{path} is missing; run UPDATE_GOLDEN=1 pytest {__file__}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize("fmt", FORMATS)
def test_golden(store, tmp_path, fmt):
    out = write_digest(store, config(), fmt, tmp_path / "out" / f"digest.{fmt}", week13())
    text = Path(out).read_text(encoding="utf-8")
    golden(f"digest.{fmt}", text)
    if fmt in ("rss", "atom"):
        root = lxml.etree.fromstring(text.encode())
        items = root.findall(".//item") or root.findall("{http://www.w3.org/2005/Atom}entry")
        assert len(items) == 5  # classified entries only: "À classer" stays out of the feeds
    if fmt == "json":
        assert json.loads(text)["period"]["key"] == "2025-W13"


@pytest.mark.parametrize("network", ["mastodon", "bluesky"])
def test_golden_threads(store, network):
    texts = thread_texts(build_digest(store, config(), week13()), network)
    golden(f"thread.{network}.txt", "\n\n=====\n\n".join(texts) + "\n")


def test_templates_overridable_from_config_folder(store, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "digest.md.j2").write_text("Custom {{ d.period.key }} {{ d.total }}\n")
    d = build_digest(store, config(), week13())
    assert render(d, config(), "md", templates_dir=tmp_path / "templates") == "Custom 2025-W13 6\n"
    # The package's HTML template is still used when the folder has none.
    assert "<svg" in render(d, config(), "html", templates_dir=tmp_path / "templates")


# ---- untrusted text ------------------------------------------------------------------------------

PAYLOADS = [
    "<script>alert('x1')</script>Texte",
    "<img src=x onerror=alert('x2')>",
    '"><img src=x onerror=alert(\'x3\')>',
    '<a href="javascript:alert(\'x4\')">clic</a>',
    "[piège](javascript:alert('x5')) et <javascript:alert('x6')>",
    "<svg onload=alert('x7')></svg> &lt;script&gt;alert('x8')&lt;/script&gt;",
    "<iframe src=\"https://evil.example\"></iframe><style>body{display:none}</style>",
]


def xss_store(path: Path) -> Store:
    s = Store(path, clock=clock)
    for i, text in enumerate(PAYLOADS):
        add(s, 100 + i, "mastodon" if i % 2 else "bluesky", f'h{i}"><script>alert(1)</script>', text,
            utc(2025, 3, 25, 10, i), category="projet" if i % 3 else "contexte",
            link="javascript:alert('link')" if i % 2 else f"https://ok.example/{i}?q=\"><script>",
            title=text)
    add(s, 200, "mastodon", "safe@piaille.example", "ok", utc(2025, 3, 26, 10), category="projet",
        link="JaVaScRiPt:alert('y')", title="<b onmouseover=alert('y')>titre</b>")
    return s


def assert_clean_html(doc: lxml.html.HtmlElement, where: str, *, site: bool = False) -> None:
    """No script, frame, event handler or non-http(s) link (with `site`, the site's own paths
    too: "/..." but never "//host")."""
    assert not doc.xpath("//script|//iframe|//style[not(ancestor::head)]|//object|//embed"), where
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: {el.tag} has {name}"
            if name.lower() in ("href", "src", "xlink:href", "action"):
                own = site and value.startswith("/") and not value.startswith("//")
                assert own or value.startswith(("https://", "http://", "#")), f"{where}: {name}={value}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_xss_payloads_do_not_survive(tmp_path, fmt):
    s = xss_store(tmp_path / "x.db")
    text = render(build_digest(s, config(), week13()), config(), fmt)
    low = text.lower()
    assert "<script" not in low and "<img" not in low and "<iframe" not in low and "<svg onload" not in low
    assert "javascript:" not in low.replace("\\", ""), "a javascript: link survived"
    assert "onerror=" not in low and "onload=" not in low and "onmouseover=" not in low
    if fmt == "html":
        assert_clean_html(lxml.html.document_fromstring(text), "html")
        assert "texte" in low  # the harmless words are kept
    if fmt == "md":  # rendered by a CommonMark renderer, raw HTML allowed: still clean
        rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
        assert_clean_html(lxml.html.document_fromstring(rendered), "md")
    if fmt in ("rss", "atom"):  # readers render descriptions as HTML
        root = lxml.etree.fromstring(text.encode())
        for node in root.iter():
            if isinstance(node.tag, str) and node.text and "<" in node.text:
                assert_clean_html(lxml.html.fragment_fromstring(node.text, create_parent="div"), fmt)
    if fmt == "json":
        data = json.loads(text)
        assert all(e["link"] is None or e["link"].startswith("https://")
                   for sec in data["sections"] for e in sec["entries"])


# ---- threads -------------------------------------------------------------------------------------

def test_grapheme_counting_and_truncation():
    family = "👨\u200d👩\u200d👧\u200d👦"
    assert len(graphemes(family)) == 1 and len(family) == 7
    assert length("é" + "e\u0301", "bluesky") == 2  # precomposed and combining: one each
    assert length("voir https://example.org/" + "x" * 100, "mastodon") == 5 + 23
    cut = truncate(family * 400, 300, "bluesky")
    assert length(cut, "bluesky") == 300 and cut.endswith("…")
    assert cut[:-1] == family * 299  # never cut inside a cluster


def test_thread_splitting_respects_limits():
    blocks = [f"• {'🏘️' * 40} ligne {i}" for i in range(30)]
    posts = split_thread(blocks, 300, "bluesky", max_posts=4, tail="Tout : https://x.example")
    assert len(posts) == 4 and posts[-1].endswith("Tout : https://x.example")
    assert all(length(p, "bluesky") <= 300 for p in posts)
    assert all(len(p) > 300 for p in posts[:1])  # code points exceed, graphemes do not


def test_digest_threads_fit_each_network(store):
    d = build_digest(store, config(), week13())
    for network, limit in (("mastodon", 500), ("bluesky", 300), ("mastodon", 120)):
        texts = thread_texts(d, network, limit)
        assert 2 <= len(texts) <= 6
        assert all(length(t, network) <= limit for t in texts), (network, limit)
        assert "https://veille.example/numpolville/" in texts[0]


# ---- publishing exactly once ---------------------------------------------------------------------

class FakeNetwork:
    """What a server remembers: threads by idempotency key (survives the bot's restart)."""

    def __init__(self) -> None:
        self.threads: dict[str, list[str]] = {}
        self.posts: list[str] = []


class FakeAdapter:
    def __init__(self, network: str, server: FakeNetwork, *, crash_after_post: bool = False,
                 max_characters: int | None = None) -> None:
        self.network, self.server, self.crash = network, server, crash_after_post
        self.calls = 0
        if max_characters:
            self.max_characters = max_characters

    def post_thread(self, texts: list[str], key: str) -> list[str]:
        self.calls += 1
        limit = getattr(self, "max_characters", 300 if self.network == "bluesky" else 500)
        assert all(length(t, self.network) <= limit for t in texts)
        if key not in self.server.threads:
            refs = [f"{self.network}:{key}:{i}" for i in range(len(texts))]
            self.server.posts += texts
            self.server.threads[key] = refs
        if self.crash:
            raise ConnectionError("the bot died before it could write 'done'")
        return self.server.threads[key]


class NoThreads:
    network = "mastodon"


def test_publish_exactly_once_across_a_restart(tmp_path):
    path = tmp_path / "x.db"
    s = build_store(path)
    c = config()
    masto, bsky = FakeNetwork(), FakeNetwork()
    d = build_digest(s, c, week13())
    # First run: Bluesky posts, then the bot "dies" before recording it; Mastodon goes through.
    out = publish_digest(s, c, [FakeAdapter("mastodon", masto, max_characters=1000),
                                FakeAdapter("bluesky", bsky, crash_after_post=True)], d)
    assert list(out) == ["mastodon"]
    assert s.digest_state("2025-W13", "mastodon") == "done"
    assert s.digest_state("2025-W13", "bluesky") == "pending"
    n_bsky = len(bsky.posts)
    s.close()
    # Restart: a new store on the same file, new adapter objects, same servers.
    s2 = Store(path, clock=clock)
    a_m, a_b = FakeAdapter("mastodon", masto), FakeAdapter("bluesky", bsky)
    out = publish_digest(s2, c, [a_m, a_b], build_digest(s2, c, week13()))
    assert a_m.calls == 0 and a_b.calls == 1 and list(out) == ["bluesky"]
    assert len(bsky.posts) == n_bsky and len(bsky.threads) == 1 and len(masto.threads) == 1
    assert s2.digest_state("2025-W13", "bluesky") == "done"
    row = {r["network"]: r for r in s2.digests()}
    assert json.loads(row["bluesky"]["refs"])[0] == "bluesky:digest:2025-W13:bluesky:0"
    # A third call does nothing at all, and an adapter without post_thread is skipped.
    assert publish_digest(s2, c, [a_m, a_b, NoThreads()], build_digest(s2, c, week13())) == {}
    assert a_b.calls == 1


def test_publish_due_uses_the_schedule(tmp_path):
    from bot.digest import publish_due
    s = build_store(tmp_path / "x.db")
    c = config(schedule="mon 09:00")
    server = FakeNetwork()
    a = FakeAdapter("bluesky", server)
    assert publish_due(s, c, [a], utc(2025, 3, 31, 6, 0)) == {}  # 08:00 in Paris
    assert list(publish_due(s, c, [a], utc(2025, 3, 31, 7, 1))) == ["bluesky"]
    assert publish_due(s, c, [a], utc(2025, 3, 31, 7, 31)) == {}
    assert a.calls == 1 and list(server.threads) == ["digest:2025-W13:bluesky"]


def test_empty_period_renders_everywhere(tmp_path):
    s = Store(tmp_path / "x.db", clock=clock)
    d = build_digest(s, config(), week13())
    assert d.total == 0
    for fmt in FORMATS:
        assert render(d, config(), fmt)
    assert "Aucun partage" in render(d, config(), "html")
    assert all(length(t, "bluesky") <= 300 for t in thread_texts(d, "bluesky"))


def test_unknown_category_and_majority_vote(tmp_path):
    s = Store(tmp_path / "x.db", clock=clock)
    for i, cat in enumerate(["contexte", "projet", "contexte"]):
        add(s, i, "mastodon", f"p{i}@x.example", "t", utc(2025, 3, 25, 10, i), category=cat,
            link="https://same.example/x")
    add(s, 9, "mastodon", "q@x.example", "t", utc(2025, 3, 25, 11), category="supprimée",
        link="https://other.example/")
    d = build_digest(s, config(), week13())
    assert [(sec.key, sec.count) for sec in d.sections if sec.count] == [("contexte", 1), ("", 1)]
    assert d.sections[0].count == 0 and len(d.sections[1].entries[0].sharers) == 3


def test_items_seen_action_store_roundtrip(tmp_path):
    # The digest only reads: building it twice changes nothing in the store.
    s = build_store(tmp_path / "x.db")
    before = s.stats()
    build_digest(s, config(), week13())
    assert s.stats() == before and s.digests() == []
    assert isinstance(m.Record, type)
    assert NOW.tzinfo is timezone.utc


# ---- the cap: every entry counted, the best ones listed ------------------------------------------

def capped_store(path: Path) -> Store:
    """Week 13: seven `projet` links, one shared by three people and one by two, the others once
    (one of them also with utm_* and http://, still one entry); nothing else."""
    s = Store(path, clock=clock)
    for i in range(5):
        add(s, f"single{i}", "mastodon", f"p{i}@x.example", f"Seul {i}", utc(2025, 3, 24 + i, 10),
            category="projet", link=f"https://single.example/{i}", title=f"Seul {i}")
    for i, handle in enumerate(["a@x.example", "b.bsky.social", "c@x.example"]):
        add(s, f"top{i}", "bluesky" if i == 1 else "mastodon", handle, "Lu", utc(2025, 3, 24, 12, i),
            category="projet", link="https://top.example/?utm_source=x" if i else "http://top.example",
            title="Le plus partagé")
    for i in range(2):
        add(s, f"two{i}", "mastodon", f"d{i}@x.example", "Lu", utc(2025, 3, 25, 12, i), category="projet",
            link="https://two.example/", title="Partagé deux fois")
    add(s, "single0-again", "mastodon", "p0@x.example", "Encore", utc(2025, 3, 29, 10), category="projet",
        link="http://single.example/0/?utm_medium=social")
    return s


def test_the_cap_lists_the_most_shared_then_the_newest_and_counts_everything(tmp_path):
    from bot.config import parse
    s = capped_store(tmp_path / "x.db")
    c = parse({"digest": {"max_entries": 3}}, "(test)")
    d = build_digest(s, c, week13())
    projet = d.sections[0]
    assert (projet.count, len(projet.entries), projet.more) == (7, 3, 4)
    assert [e.title for e in projet.entries] == ["Le plus partagé", "Partagé deux fois", "Seul 4"]
    assert projet.entries[0].link == "https://top.example" and len(projet.entries[0].sharers) == 3
    assert d.total == 7 and d.listed == 3 and d.series[-1].counts["projet"] == 7
    assert "… et 4 autre(s) dans cette catégorie" in render(d, c, "md")
    page = lxml.html.document_fromstring(render(d, c, "html"))
    assert len(page.find_class("entry")) == 3
    assert [p.text_content() for p in page.find_class("more")] == ["… et 4 autre(s) dans cette catégorie"]
    for fmt in ("rss", "atom"):  # feeds carry the listed entries
        root = lxml.etree.fromstring(render(d, c, fmt).encode())
        assert len(root.findall(".//item") or root.findall("{http://www.w3.org/2005/Atom}entry")) == 3
    data = json.loads(render(d, c, "json"))["sections"][0]
    assert (data["count"], len(data["entries"]), data["more"]) == (7, 3, 4)
    texts = thread_texts(d, "mastodon")
    assert "Projet (7)" in texts[1] and "… et 4 autre(s)" in "\n".join(texts)
    two = build_digest(s, parse({"digest": {"max_entries": 2}}, "(test)"), week13())
    assert "… et 5 autre(s)" in "\n".join(thread_texts(two, "mastodon"))  # 2 quoted, not 3
    # 0 lists everything.
    everything = build_digest(s, parse({"digest": {"max_entries": 0}}, "(test)"), week13())
    assert len(everything.sections[0].entries) == 7 and everything.sections[0].more == 0
    assert everything.sections[0].entries[:3] == projet.entries


def test_a_week_counts_the_same_as_current_and_as_previous(store):
    # Week 14's "previous" is week 13 read through `digest_links`, week 13's own counts come
    # through `digest_shares`: the same entries, exclusions included.
    w13 = build_digest(store, config(), week13())
    w14 = build_digest(store, config(), period_from_args(now=utc(2025, 4, 7, 7), tz_name="Europe/Paris",
                                                         week=True))
    assert {s.key: s.previous for s in w14.sections} == {s.key: s.count for s in w13.sections}
    assert w14.previous_networks == w13.networks
    assert w14.series[-2].counts == w13.series[-1].counts
    assert [p.total for p in w14.series[:-1]] == [p.total for p in w13.series[1:]]


def test_tally_counts_entries_as_they_are_grouped_on_random_links():
    import random

    from bot.digest.build import link_key, majority, tally
    rng = random.Random(3)
    order = ["projet", "contexte", "initiative"]
    variants = ["https://a.example/{}", "http://a.example/{}/", "https://A.example/{}?utm_source=m#x",
                "https://a.example:443/{}?fbclid=1", "https://a.example/{}?id=2", "javascript:alert({})",
                "https://a.example/{} x", "ftp://a.example/{}"]
    for _ in range(30):
        n = rng.randrange(1, 60)
        links = [rng.choice(["", *variants]).format(rng.randrange(6)) if rng.random() < 0.9 else None
                 for _ in range(n)]
        votes = [rng.choice([None, None, "projet", "contexte", "initiative", "supprimée"]) for _ in range(n)]
        groups: dict[object, list[int]] = {}  # the plain definition: one group per key
        for i, link in enumerate(links):
            groups.setdefault(link_key(link) or i, []).append(i)
        expected = Counter(majority([votes[i] for i in g], order) for g in groups.values())
        counted, shared = tally(links, votes, order)
        assert counted == expected, (links, votes)
        assert shared == [g for g in groups.values() if len(g) > 1]


@pytest.mark.parametrize("value", [-1, 2.5, True, "30"])
def test_max_entries_is_checked_at_load(value):
    from bot.config import ConfigError, parse
    with pytest.raises(ConfigError) as e:
        parse({"digest": {"max_entries": value}}, "config/x.toml")
    assert e.value.key == "digest.max_entries" and "whole number" in e.value.expected
    assert str(e.value).startswith("config/x.toml: `digest.max_entries`")


def test_the_example_configuration_documents_the_digest_defaults(monkeypatch):
    from bot.config import DigestConfig, load
    monkeypatch.delenv("NUMPOLVILLE_CONFIG", raising=False)
    example = load(Path(__file__).parent.parent / "config" / "numpolville.example.toml")
    assert example.digest == DigestConfig() and example.digest.max_entries == 30
