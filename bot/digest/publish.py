"""`--post` and the scheduled digest: the digest as a short thread on each network, exactly once.

Lengths are counted as the servers count them: in grapheme clusters (the `regex` module's `\\X`,
Unicode extended grapheme clusters), so an emoji family or an accented letter written with a
combining mark counts once. Mastodon also counts every URL as 23 characters, whatever its length.

Exactly once: before calling an adapter, the (period, network) row is written as pending in the
`digests` table; after, it is marked done. A row already done is skipped. A row still pending
(the bot stopped in between) is retried with the same key, and `post_thread(texts, key)` is
idempotent by key (the adapter finds the thread it already posted), so a restart never posts twice.

A thread quotes people (titles are their words) and must notify none of them: every "@" that
would start a mention gets a zero-width space after it (`unmention`), so "@carol" and
"@carol@piaille.fr" still read the same but Mastodon does not parse them as mentions; on Bluesky
the posts carry link facets only, never a mention facet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import regex

from bot.config import Config
from bot.digest.build import UNCLASSIFIED, Digest
from bot.digest.render import WORDS, period_label, signed
from bot.store import Store

log = logging.getLogger("numpolville.digest")

LIMITS = {"mastodon": 500, "bluesky": 300}
MASTODON_URL_LENGTH = 23
MAX_POSTS = 6  # a short thread: the intro, then the categories
PER_SECTION = 3  # entries quoted per category, the rest is on the page
_GRAPHEME = regex.compile(r"\X")
_URL = regex.compile(r"https?://\S+")
# A URL (kept whole), or where Mastodon starts a mention (Account::MENTION_RE): an "@" not after a
# word character, "/" or "=", before a username's first character.
_URL_OR_MENTION_AT = regex.compile(r"(https?://\S+)|(?<![\w/=])@(?=\w)")
ZWSP = "\u200b"

THREAD_WORDS = {
    "fr": {"more": "… et {n} autre(s)", "all": "Tout le détail : {url}",
           "summary": "{total} partages ({change}), {people} contributeurs·rices.",
           "heading": "{label} ({count})"},
    "en": {"more": "… and {n} more", "all": "Everything: {url}",
           "summary": "{total} shares ({change}), {people} contributors.",
           "heading": "{label} ({count})"},
}


def graphemes(text: str) -> list[str]:
    return _GRAPHEME.findall(text)


def length(text: str, network: str) -> int:
    """The length the network's server checks: graphemes; on Mastodon a URL counts as 23."""
    if network == "mastodon":
        urls = _URL.findall(text)
        return len(graphemes(_URL.sub("", text))) + MASTODON_URL_LENGTH * len(urls)
    return len(graphemes(text))


def truncate(text: str, limit: int, network: str) -> str:
    """Cut at a grapheme boundary (never inside an emoji or a combining sequence), adding "…"."""
    if length(text, network) <= limit:
        return text
    out = ""
    for g in graphemes(text):
        if length(out + g + "…", network) > limit:
            break
        out += g
    return out.rstrip() + "…"


def split_thread(blocks: Iterable[str], limit: int, network: str, *, max_posts: int = MAX_POSTS,
                 tail: str = "") -> list[str]:
    """Pack blocks (paragraphs, list lines) into as few posts as possible, each within `limit`.
    A block is never split unless it alone is too long (then it is truncated). If the thread
    would exceed `max_posts`, the last post ends with `tail` (e.g. the link to the full page)."""
    posts: list[str] = []
    current = ""
    for block in blocks:
        block = truncate(block.strip("\n"), limit, network)
        candidate = f"{current}\n{block}" if current else block
        if length(candidate, network) <= limit:
            current = candidate
        else:
            posts.append(current)
            current = block
    if current:
        posts.append(current)
    if len(posts) > max_posts:
        posts = posts[:max_posts]
        if tail:
            last = posts[-1]
            while last and length(f"{last}\n{tail}", network) > limit:
                last = last.rsplit("\n", 1)[0] if "\n" in last else ""
            posts[-1] = f"{last}\n{tail}" if last else truncate(tail, limit, network)
    return posts


def unmention(text: str) -> str:
    """Text quoted in a post that notifies no one it names; URLs are left whole."""
    return _URL_OR_MENTION_AT.sub(lambda m: m.group(1) or "@" + ZWSP, text)


def thread_texts(digest: Digest, network: str, limit: int | None = None) -> list[str]:
    """The digest as a thread for one network: the intro (period, counts, link to the page), then
    each non-empty category with its first entries."""
    limit = limit or LIMITS.get(network, 300)
    lang = digest.language
    tw, w = THREAD_WORDS[lang], WORDS[lang]
    url = digest.public_url
    intro = [f"{digest.title} — {period_label(digest.period, lang)}",
             tw["summary"].format(total=digest.total, change=signed(digest.total - digest.previous_total),
                                  people=digest.contributors)]
    counts = " · ".join(f"{s.label} {s.count}" for s in digest.sections if s.count)
    if counts:
        intro.append(counts)
    # The link to the page survives truncation: the counts are cut first.
    room = limit - (length("\n" + url, network) if url else 0)
    posts = [truncate("\n".join(intro), room, network) + (f"\n{url}" if url else "")]
    blocks: list[str] = []
    for s in digest.sections:
        if not s.count or s.key == UNCLASSIFIED:
            continue
        heading = tw["heading"].format(label=s.label, count=s.count)
        quoted = s.entries[:PER_SECTION]  # the best ones: sections list them best first
        for i, e in enumerate(quoted):
            line = f"• {unmention(e.title)}"
            link = e.url or ""
            # A link only when it fits: on Bluesky a long URL would eat the whole post.
            if link and length(f"{line}\n{link}", network) <= limit // 2:
                line = f"{line}\n{link}"
            # The heading travels with the first entry, never alone at the end of a post.
            blocks.append(truncate(f"{heading}\n{line}" if i == 0 else line, limit, network))
        if s.count > len(quoted):
            blocks.append(tw["more"].format(n=s.count - len(quoted)))
    if url and blocks:
        blocks.append(tw["all"].format(url=url))
    if not digest.total:
        blocks.append(w["nothing"])
    body = split_thread(blocks, limit, network, max_posts=MAX_POSTS - 1,
                        tail=tw["all"].format(url=url) if url else "")
    return posts + [p.strip("\n") for p in body if p.strip()]


def post_limit(adapter: Any) -> int:
    """The adapter's own limit when it read one from its server (`max_characters`), else the default."""
    value = getattr(adapter, "max_characters", None)
    return int(value) if value else LIMITS.get(adapter.network, 300)


def publish_digest(store: Store, config: Config, adapters: Iterable[Any], digest: Digest,
                   *, texts: Callable[[Digest, str, int], list[str]] = thread_texts) -> dict[str, list[str]]:
    """Post the digest on every adapter that can (`post_thread`), once per period and network.
    Returns the refs posted now, per network. A network that fails stays pending and is retried
    on the next call (with the same key); the other networks go on."""
    posted: dict[str, list[str]] = {}
    period = digest.period.key
    for adapter in adapters:
        network = adapter.network
        post_thread = getattr(adapter, "post_thread", None)
        if post_thread is None:
            log.info("digest %s: the %s adapter cannot post threads yet, skipped", period, network)
            continue
        if store.digest_pending(period, network) == "done":
            log.info("digest %s already published on %s", period, network)
            continue
        key = f"digest:{period}:{network}"
        try:
            refs = list(post_thread(texts(digest, network, post_limit(adapter)), key))
        except Exception as e:  # noqa: BLE001 - one network failing must not stop the other
            log.warning("digest %s on %s failed, will retry: %s", period, network, e)
            continue
        store.digest_done(period, network, refs)
        posted[network] = refs
        log.info("digest %s published on %s (%d posts)", period, network, len(refs))
    return posted
