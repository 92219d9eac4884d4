"""The shared link of a post, on both networks: where it is taken from, and that only web links
(http, https) are ever taken, whatever a hostile facet, embed or status points to."""

from __future__ import annotations

from typing import Any

import pytest

from bot.bluesky.convert import to_post as bluesky_post
from bot.links import web_link
from bot.mastodon.convert import to_post as mastodon_post

EXTERNAL = "app.bsky.embed.external"
LINK = "app.bsky.richtext.facet#link"


def bsky(text: str = "Voir #numpolville", **record: Any) -> tuple[str | None, str | None]:
    p = bluesky_post({"text": text, "createdAt": "2026-11-23T09:00:00Z", **record},
                     "did:plc:alice", "3k", "bafy", bot_did="did:plc:bot")
    return p.link, p.link_title


def external(uri: str, title: str = "Titre") -> dict[str, Any]:
    return {"$type": EXTERNAL, "external": {"uri": uri, "title": title, "description": ""}}


def facet(uri: str) -> list[dict[str, Any]]:
    return [{"index": {"byteStart": 0, "byteEnd": 4}, "features": [{"$type": LINK, "uri": uri}]}]


def test_bluesky_external_embed_first_then_facet_then_text() -> None:
    assert bsky(embed=external("https://a.org/x"), facets=facet("https://b.org")) == (
        "https://a.org/x", "Titre")
    assert bsky(facets=facet("https://b.org/y")) == ("https://b.org/y", None)
    assert bsky("Lu sur https://c.org/page?x=1. Bien #numpolville") == ("https://c.org/page?x=1", None)
    assert bsky("(voir http://d.org/a_b), #numpolville") == ("http://d.org/a_b", None)
    assert bsky("Rien ici #numpolville") == (None, None)


def test_bluesky_external_inside_record_with_media() -> None:
    embed = {"$type": "app.bsky.embed.recordWithMedia",
             "record": {"$type": "app.bsky.embed.record", "record": {"uri": "at://x", "cid": "c"}},
             "media": external("https://media.org/p", "Média")}
    assert bsky(embed=embed) == ("https://media.org/p", "Média")


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://f.org/x",
                                 "https:", "//no-scheme.org", "at://did:plc:x/post/1", "", None, 42])
def test_bluesky_hostile_targets_are_ignored(bad: Any) -> None:
    got = bsky("Texte https://ok.org/fin #numpolville", embed=external(bad), facets=facet(bad))
    assert got == ("https://ok.org/fin", None)


def test_bluesky_text_url_needs_a_web_scheme() -> None:
    assert bsky("javascript:alert(1) et data:text/html,x #numpolville") == (None, None)


def status(content: str, card: Any = None, **more: Any) -> dict[str, Any]:
    return {"id": "7", "uri": "https://h.test/s/7", "created_at": "2026-11-23T09:00:00Z",
            "content": content, "visibility": "public", "card": card,
            "account": {"id": "1", "acct": "alice"}, **more}


def masto(content: str, card: Any = None, **more: Any) -> tuple[str | None, str | None]:
    p = mastodon_post(status(content, card, **more))
    assert p is not None
    return p.link, p.link_title


MENTION = '<span class="h-card"><a href="https://h.test/@bob" class="u-url mention">@bob</a></span>'
TAG = '<a href="https://h.test/tags/numpolville" class="mention hashtag" rel="tag">#numpolville</a>'


def test_mastodon_card_first_then_first_link_not_a_mention_nor_a_hashtag() -> None:
    content = f'<p>{MENTION} {TAG} <a href="https://page.org/a">page.org/a</a></p>'
    assert masto(content, {"url": "https://card.org/c", "title": "Carte"}) == (
        "https://card.org/c", "Carte")
    assert masto(content) == ("https://page.org/a", None)
    assert masto(f"<p>{MENTION} {TAG}</p>") == (None, None)


def test_mastodon_hostile_targets_are_ignored() -> None:
    content = ('<p><a href="javascript:alert(1)">clic</a> <a href="data:text/html,x">d</a> '
               '<a href="https://ok.org/b">ok.org/b</a></p>')
    assert masto(content, {"url": "javascript:alert(2)", "title": "x"}) == ("https://ok.org/b", None)
    assert masto('<p><a href="javascript:alert(1)">clic</a></p>', "not a card") == (None, None)


def test_web_link() -> None:
    assert web_link("https://a.org") and web_link("HTTP://A.ORG/x")
    assert not any(web_link(v) for v in ("javascript:x", "https://", "http://[::1", "mailto:a@b.c"))
