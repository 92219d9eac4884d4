"""What the bot's home server is and can do, read once at connect.

Mastodon, GoToSocial, Akkoma and Pleroma share an API but not every behaviour (the families and
their sources: shared/notes/mastodon-server-families.md). The bot follows what it can probe (the
streaming URL, the SSE endpoint, following a tag) and, for what no request can show without side
effects (whether `Idempotency-Key` is honoured), what the software is documented to do, erring on
the safe side: an unknown server is assumed to ignore the key.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import requests
from mastodon import Mastodon

from bot.mastodon.client import REQUEST_TIMEOUT, Retrier

log = logging.getLogger("numpolville.mastodon")

DEFAULT_CHARACTER_LIMIT = 500
# Idempotency-Key: Mastodon keeps it an hour (PostStatusService), Pleroma's and Akkoma's
# IdempotencyPlug honour it; GoToSocial does not implement it.
IDEMPOTENT_SOFTWARE = frozenset({"mastodon", "pleroma", "akkoma", "hometown", "glitch-soc"})
COMPATIBLE = re.compile(r"\(compatible;\s*(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class ServerInfo:
    software: str  # nodeinfo's software.name, lower case ("mastodon", "gotosocial", "akkoma"...)
    version: str  # the instance's `version`, as the server says it
    streaming_url: str  # where the WebSocket streams are (ws:// or wss://)
    sse: bool  # Mastodon's SSE endpoints answer (`/api/v1/streaming/health`)
    idempotency: bool  # a retried post with the same Idempotency-Key makes no second status
    max_characters: int = DEFAULT_CHARACTER_LIMIT
    follows_tag: bool = False  # the bot's account follows the hashtag: it reaches the home timeline
    follow_error: str = ""  # why following the tag failed, if it did

    def identity(self) -> str:
        """What the server is and where it streams (what `doctor` can tell before `run`)."""
        transports = "WebSocket" + (" and SSE" if self.sse else "")
        return (f"{self.software} {self.version}; streaming: {transports} at "
                f"{self.streaming_url or '(none)'}")

    def describe(self) -> str:
        """One line for logs and `status`."""
        idem = "honours Idempotency-Key" if self.idempotency else \
            "ignores Idempotency-Key (retries look in the thread first)"
        followed = "hashtag followed" if self.follows_tag else \
            f"hashtag not followed ({self.follow_error or 'off'})"
        return f"{self.identity()}; {followed}; {idem}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def software_of(nodeinfo_name: str, version: str) -> str:
    """The software's name: nodeinfo's, else the "(compatible; Pleroma …)" of the version."""
    if nodeinfo_name:
        return nodeinfo_name.lower()
    found = COMPATIBLE.search(version)
    return found.group(1).lower() if found else "mastodon"


def probe(client: Mastodon, retry: Retrier, base_url: str) -> ServerInfo:
    """Read the server's identity and capabilities: instance v2 (else v1) and nodeinfo."""
    instance = _first(lambda: retry(client.instance_v2), lambda: retry(client.instance_v1)) or {}
    version = str(instance.get("version") or "")
    urls = (instance.get("configuration") or {}).get("urls") or instance.get("urls") or {}
    streaming = str(urls.get("streaming") or urls.get("streaming_api") or "")
    if not streaming:  # the API host itself
        streaming = "ws" + base_url[len("http"):] if base_url.startswith("http") else ""
    nodeinfo = _first(lambda: retry(client.instance_nodeinfo)) or {}
    software = software_of(str((nodeinfo.get("software") or {}).get("name") or ""), version)
    return ServerInfo(software=software, version=version, streaming_url=streaming.rstrip("/"),
                      sse=_sse(client, base_url), idempotency=software in IDEMPOTENT_SOFTWARE,
                      max_characters=_max_characters(instance))


def follow_tag(client: Mastodon, retry: Retrier, info: ServerInfo, hashtag: str) -> ServerInfo:
    """Follow the hashtag (Mastodon 4.0+, GoToSocial): its posts then reach the home timeline and
    the `user` stream, a live path on servers whose hashtag stream is never fed."""
    try:
        followed = retry(client.tag_follow, hashtag)
    except Exception as e:  # noqa: BLE001 - a server without followed tags: polling still reads all
        log.info("mastodon: cannot follow #%s on this server (%s)", hashtag, e)
        return replace(info, follows_tag=False, follow_error=str(e)[:200] or type(e).__name__)
    return replace(info, follows_tag=bool(followed.get("following", True)))


def _sse(client: Mastodon, base_url: str) -> bool:
    """Mastodon's streaming server answers "OK" on `/api/v1/streaming/health`; the others have
    no SSE (a 404, or their web page)."""
    try:
        answer = client.session.get(f"{base_url}/api/v1/streaming/health", timeout=REQUEST_TIMEOUT)
    except requests.RequestException:
        return False
    return answer.status_code == 200 and answer.text.strip() == "OK"


def _max_characters(instance: dict[str, Any]) -> int:
    """The post length limit: Mastodon's `configuration.statuses`, Pleroma's `max_toot_chars`."""
    statuses = (instance.get("configuration") or {}).get("statuses") or {}
    for value in (statuses.get("max_characters"), instance.get("max_toot_chars")):
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_CHARACTER_LIMIT


def _first(*reads: Any) -> Any:
    for read in reads:
        try:
            return read()
        except Exception:  # noqa: BLE001 - servers differ; the next source may have it
            continue
    return None
