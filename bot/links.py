"""Which links a post shares: only web links (http, https) are ever taken, whatever a facet, an
embed or a status's HTML points to (`javascript:`, `data:` and the rest are ignored)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

# A URL written out in a post's text: up to the first space or character no URL holds unquoted.
TEXT_URL = re.compile(r"https?://[^\s<>\"'\u00a0]+", re.IGNORECASE)
# Punctuation that ends a sentence rather than the URL before it.
TRAILING = ".,;:!?)]}»…"


def web_link(value: Any) -> bool:
    """An absolute http(s) URL with a host."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # e.g. an invalid IPv6 host
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
