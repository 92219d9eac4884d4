"""Plain text -> Mastodon-flavoured HTML.

Why: the bot parses `content` HTML, so it must see the same markup real
Mastodon produces for paragraphs, links, hashtags and mentions.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .state import World

from .state import MENTION_RE, TAG_RE, URL_RE

TOKEN_RE = re.compile(
    f"(?P<url>{URL_RE.pattern})|(?P<mention>{MENTION_RE.pattern})|(?P<tag>{TAG_RE.pattern})", re.UNICODE
)


def _link(url: str) -> str:
    m = re.match(r"(https?://(?:www\.)?)(.*)", url)
    prefix, rest = (m.group(1), m.group(2)) if m else ("", url)
    visible, invisible = rest[:30], rest[30:]
    cls = "ellipsis" if invisible else ""
    return (
        f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{html.escape(prefix)}</span>'
        f'<span class="{cls}">{html.escape(visible)}</span>'
        f'<span class="invisible">{html.escape(invisible)}</span></a>'
    )


def _render_line(line: str, world: World, mention_ids: list[str], tags: list[str], urls: list[str]) -> str:
    out: list[str] = []
    pos = 0
    for m in TOKEN_RE.finditer(line):
        out.append(html.escape(line[pos : m.start()], quote=False))
        pos = m.end()
        token = m.group(0)
        if m.group("url"):
            urls.append(token)
            out.append(_link(token))
        elif m.group("mention"):
            acc = world.find_account(token[1:])
            if acc is None or acc.id not in mention_ids:
                out.append(html.escape(token, quote=False))
                continue
            out.append(
                f'<span class="h-card" translate="no"><a href="{html.escape(acc.url)}" '
                f'class="u-url mention">@<span>{html.escape(acc.username)}</span></a></span>'
            )
        else:
            name = token[1:]
            if name.lower() not in tags:
                tags.append(name.lower())
            out.append(
                f'<a href="{world.base}/tags/{html.escape(name)}" class="mention hashtag" '
                f'rel="tag">#<span>{html.escape(name)}</span></a>'
            )
    out.append(html.escape(line[pos:], quote=False))
    return "".join(out)


def render_content(text: str, world: World, mention_ids: list[str]) -> tuple[str, list[str], Optional[str]]:
    """Return (content_html, lowercase tag names, first link url for the card)."""
    tags: list[str] = []
    urls: list[str] = []
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    parts = []
    for para in paragraphs:
        lines = [_render_line(line, world, mention_ids, tags, urls) for line in para.split("\n")]
        parts.append("<p>" + "<br />".join(lines) + "</p>")
    return "".join(parts), tags, (urls[0] if urls else None)


def note_html(note: str) -> str:
    """Account bio: Mastodon stores it as text and serves it as <p> HTML."""
    if not note:
        return ""
    paragraphs = [p for p in re.split(r"\n\s*\n", note.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br />".join(html.escape(x, quote=False) for x in p.split("\n")) + "</p>" for p in paragraphs
    )
