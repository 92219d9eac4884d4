"""A small, real (HTTP + SSE + WebSocket) Mastodon API server that tests own.

Why: no Mastodon server can be installed in CI, and mocks would not exercise
Mastodon.py's real HTTP, paging, rate-limit and streaming code paths.
"""

from .server import MastodonServer

__all__ = ["MastodonServer"]
