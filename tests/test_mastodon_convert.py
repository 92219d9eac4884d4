"""Status JSON → Post, on entities recorded from a real Mastodon server (Mastodon.py's cassettes)
and on variations of them."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.mastodon.convert import html_to_text, to_post
from bot.mastodon.sources import newer

REF = json.loads((Path(__file__).parent / "mastodon_server" / "cassettes" /
                  "reference_entities.json").read_text(encoding="utf-8"))


def status(**changes: Any) -> dict[str, Any]:
    s = copy.deepcopy(REF["status"])
    s.update(changes)
    return s


def test_recorded_status() -> None:
    s = REF["status"]
    post = to_post(s)
    assert post is not None
    assert (post.network, post.uri, post.ref, post.url) == ("mastodon", s["uri"], s["id"], s["url"])
    assert post.author.id == s["account"]["id"] and post.author.handle == "mastodonpy_test_2"
    assert post.author.follows_bot is None and post.author.bio == ""
    assert post.text == "Toot number 29! #fgiztsshwiaqqiztpmmjbtvmescsculuvmgjgopwoeidbcrixp"
    assert post.tags == frozenset({"fgiztsshwiaqqiztpmmjbtvmescsculuvmgjgopwoeidbcrixp"})
    assert post.created_at == datetime(2026, 10, 14, 19, 6, 23, 354000, tzinfo=timezone.utc)
    assert post.visibility == "public" and post.reply_to is None and not post.mentions_bot
    assert post.link is None, "a hashtag link is not the post's link"


def test_recorded_mention_notification_mentions_the_bot() -> None:
    s = REF["notification_mention"]["status"]
    post = to_post(s, bot_ids=frozenset({"117440810532227399"}))
    assert post is not None and post.mentions_bot and post.text == "@mastodonpy_test hello!"
    assert post.link is None, "a mention link is not the post's link"
    assert to_post(s, bot_ids=frozenset({"1"})).mentions_bot is False  # type: ignore[union-attr]


def test_reblog_is_not_a_post() -> None:
    assert to_post(REF["reblog"]) is None


def test_card_gives_link_and_title() -> None:
    post = to_post(status(card=REF["card"]))
    assert post and post.link == "http://example.org/" and post.link_title == "Example Domain"


def test_first_plain_link_without_card_keeps_its_full_href() -> None:
    content = ('<p>Voir <a href="https://example.org/rapport/2024" rel="nofollow noopener" '
               'target="_blank"><span class="invisible">https://</span><span class="ellipsis">'
               'example.org/rapport/</span><span class="invisible">2024</span></a><br />'
               'et <a href="https://other.org/">ce site</a></p><p>Fin '
               '<a href="https://m.social/tags/NumPolVille" class="mention hashtag" rel="tag">'
               '#<span>NumPolVille</span></a></p>')
    post = to_post(status(content=content, tags=[{"name": "NumPolVille",
                                                  "url": "https://m.social/tags/NumPolVille"}]))
    assert post is not None
    assert post.text == ("Voir https://example.org/rapport/2024\net ce site (https://other.org/)"
                         "\n\nFin #NumPolVille")
    assert post.link == "https://example.org/rapport/2024" and post.link_title is None
    assert post.has_tag("numpolville") and post.tags == frozenset({"numpolville"})


def test_reply_to_is_the_parents_uri_from_the_resolver() -> None:
    seen: list[str] = []

    def parent(local_id: str) -> str | None:
        seen.append(local_id)
        return "https://home/statuses/1" if local_id == "42" else None

    assert to_post(status(in_reply_to_id="42"), parent_uri=parent).reply_to == "https://home/statuses/1"  # type: ignore[union-attr]
    assert to_post(status(in_reply_to_id="7"), parent_uri=parent).reply_to is None  # type: ignore[union-attr]
    assert seen == ["42", "7"]


def test_bio_is_plain_text_and_nobot_is_seen() -> None:
    s = status()
    s["account"]["note"] = ('<p>Urbaniste.<br>Pas de robots <a href="https://m/tags/nobot" '
                            'class="mention hashtag">#<span>NoBot</span></a></p>')
    post = to_post(s)
    assert post and post.author.bio == "Urbaniste.\nPas de robots #NoBot" and post.author.refuses_bots()


@pytest.mark.parametrize("value,expected", [("public", "public"), ("unlisted", "unlisted"),
                                            ("private", "private"), ("direct", "direct"),
                                            ("local", "private"), (None, "private")])
def test_visibility(value: str | None, expected: str) -> None:
    assert to_post(status(visibility=value)).visibility == expected  # type: ignore[union-attr]


def test_html_entities_and_empty() -> None:
    assert html_to_text("<p>a &amp; b &lt;3</p><p></p>") == "a & b <3"
    assert html_to_text(None) == "" and html_to_text("") == ""


def test_id_order_for_snowflakes_and_ulids() -> None:
    assert newer("117440825481806171", "99999999999999999") and not newer("5", "10")
    assert newer("01HZX0000000000000000000B1", "01HZX0000000000000000000A9")
    assert newer("1", None)
