"""Mastodon status JSON → `bot.model.Post`.

Pure functions: what needs the server or the store (the bot's ids, the uri of a reply's parent) is
passed in. Works on Mastodon.py's dicts and on raw JSON alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, get_args

from bot.bridges import mastodon_original
from bot.links import web_link
from bot.model import Author, Post, Visibility

VISIBILITIES = get_args(Visibility)
# Markup that ends a line or a paragraph in Mastodon's (and Akkoma's, Pleroma's) HTML.
BREAKS = {"br": "\n", "p": "\n\n", "div": "\n", "li": "\n", "blockquote": "\n\n", "pre": "\n\n"}


@dataclass
class _Link:
    href: str
    text: str = ""
    mention_or_tag: bool = False


class _Reader(HTMLParser):
    """Collects the plain text and the links of a status's HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[_Link] = []
        self._open: _Link | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BREAKS and tag != "p":
            self.parts.append(BREAKS[tag])
        elif tag == "p" and self.parts:
            self.parts.append(BREAKS["p"])
        elif tag == "a":
            a = {k: v or "" for k, v in attrs}
            classes = a.get("class", "").split()
            self._open = _Link(a.get("href", ""), mention_or_tag="mention" in classes
                               or "hashtag" in classes or a.get("rel") == "tag")
            self.links.append(self._open)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            link, self._open = self._open, None
            if not link.mention_or_tag and link.href and not _same_url(link.text, link.href):
                self.parts.append(f" ({link.href})" if link.text.strip() else link.href)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._open is not None:
            self._open.text += data

    def text(self) -> str:
        lines = "".join(self.parts).replace("\r", "").split("\n")
        return "\n".join(line.strip() for line in lines).strip("\n")


def _same_url(text: str, href: str) -> bool:
    """Mastodon shows a link's full URL, split into spans; other servers may show a label."""
    def norm(u: str) -> str:
        return u.strip().removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")
    return norm(text) == norm(href)


def html_to_text(html: str | None) -> str:
    """Plain text of a status or bio: line breaks kept, links' targets kept."""
    return _read(html).text()


def _read(html: str | None) -> _Reader:
    reader = _Reader()
    reader.feed(html or "")
    reader.close()
    return reader


def to_post(status: Mapping[str, Any], *, bot_ids: frozenset[str] = frozenset(),
            parent_uri: Callable[[str], str | None] = lambda _id: None) -> Post | None:
    """The Post a status is, or None for a boost (a boost of a tagged post is not a new post).

    `parent_uri` maps `in_reply_to_id` (a local id) to the parent's uri, so that an answer to a
    prompt finds the prompt; it may return None when the parent does not matter to the bot.
    """
    if status.get("reblog"):
        return None
    account = status["account"]
    reader = _read(status.get("content"))
    link, title = _first_link(status, reader.links)
    reply_to = status.get("in_reply_to_id")
    return Post(
        network="mastodon",
        uri=status["uri"],
        ref=str(status["id"]),
        url=status.get("url") or status["uri"],
        author=Author(network="mastodon", id=str(account["id"]), handle=account["acct"],
                      bio=html_to_text(account.get("note")), bot=bool(account.get("bot"))),
        text=reader.text(),
        created_at=_datetime(status["created_at"]),
        visibility=_visibility(status.get("visibility")),
        tags=frozenset(str(t["name"]).casefold() for t in status.get("tags") or ()),
        link=link,
        link_title=title,
        reply_to=parent_uri(str(reply_to)) if reply_to else None,
        mentions_bot=any(str(m["id"]) in bot_ids for m in status.get("mentions") or ()),
        reply_to_author=str(status.get("in_reply_to_account_id") or "") if reply_to else None,
        bridged_from=mastodon_original(status),
    )


def _first_link(status: Mapping[str, Any], links: list[_Link]) -> tuple[str | None, str | None]:
    """The card's URL (the server's preview of the shared page), else the first link of the content
    that is neither a mention nor a hashtag; http(s) only."""
    card = status.get("card")
    if isinstance(card, Mapping) and web_link(card.get("url")):
        return card["url"], card.get("title") or None
    skip = {m.get("url") for m in status.get("mentions") or ()} | {
        t.get("url") for t in status.get("tags") or ()}
    for link in links:
        if web_link(link.href) and not link.mention_or_tag and link.href not in skip:
            return link.href, None
    return None, None


def _visibility(value: str | None) -> Visibility:
    """Unknown kinds (e.g. Akkoma's "local") count as private: never boosted."""
    return value if value in VISIBILITIES else "private"  # type: ignore[return-value]


def _datetime(value: datetime | str) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)
