"""`app.bsky.feed.getFeedSkeleton`: one page of a feed from the store, and its cursor.

The cursor is the last post's (created_at, uri), opaque to clients (URL-safe base64 of JSON): the
same position always gives the same next page, and a post inserted or withdrawn meanwhile neither
repeats nor skips another one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.feedgen.feeds import Feed
from bot.store import Store

DEFAULT_LIMIT, MAX_LIMIT = 50, 100


class XrpcError(Exception):
    """An XRPC error answer: HTTP status, error name, message (`{"error", "message"}`)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


def invalid(message: str) -> XrpcError:
    return XrpcError(400, "InvalidRequest", message)


def encode_cursor(created_at: str, uri: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, uri]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, uri = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        datetime.fromisoformat(created_at)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid("malformed cursor") from None
    if not isinstance(uri, str) or not uri.startswith("at://"):
        raise invalid("malformed cursor")
    return created_at, uri


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def skeleton(store: Store, published: Mapping[str, Feed], params: Mapping[str, str]) -> dict[str, Any]:
    """The page asked for by the query `params` (`feed`, `limit`, `cursor`) of one of the
    `published` feeds (by at:// URI)."""
    uri = params.get("feed")
    if not uri:
        raise invalid("feed is required")
    feed = published.get(uri)
    if feed is None:
        raise XrpcError(400, "UnknownFeed", f"unknown feed: {uri[:300]}")
    limit = parse_limit(params.get("limit"))
    cursor = params.get("cursor")
    rows = store.feed_page(feed.category, decode_cursor(cursor) if cursor else None, limit)
    body: dict[str, Any] = {"feed": [{"post": u} for _, u in rows]}
    if len(rows) == limit:
        body["cursor"] = encode_cursor(*rows[-1])
    return body
