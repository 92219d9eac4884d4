"""The feed service's HTTP side, as Starlette routes the bot's web site mounts at its root:
`/.well-known/did.json` (when the service DID is the site's did:web), describeFeedGenerator and
getFeedSkeleton. Every error is an XRPC error body (`{"error", "message"}`)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import Config, did_web
from bot.feedgen.auth import KeyCache, ServiceAuth, sdk_resolver
from bot.feedgen.feeds import Feed, feeds
from bot.feedgen.skeleton import XrpcError, skeleton
from bot.store import Store

PAGES_KEPT = 1000  # pages kept between two changes of the database


def routes(config: Config, store: Store, *, keys: KeyCache | None = None) -> list[Route]:
    """The feed service's routes, none while `[bluesky.feeds] enabled` is false; `keys`: the
    issuers' key cache (default: resolved through the SDK and `plc_directory`)."""
    if not config.bluesky.feeds.enabled:
        return []
    service = FeedService(config, store, keys or KeyCache(sdk_resolver(config.bluesky.feeds.plc_directory)))
    return [Route("/.well-known/did.json", service.did_document, methods=["GET"]),
            Route("/xrpc/app.bsky.feed.describeFeedGenerator", service.describe, methods=["GET"]),
            Route("/xrpc/app.bsky.feed.getFeedSkeleton", service.skeleton, methods=["GET"])]


class FeedService:
    def __init__(self, config: Config, store: Store, keys: KeyCache) -> None:
        self.store, self.public_url = store, config.web.public_url
        self.did = config.bluesky.feeds.service_did
        self.feeds = {f.key: f for f in feeds(config)}
        self.auth = ServiceAuth(self.did, keys)
        self._version: tuple[int, int] | None = None
        self._pages: dict[tuple[str | None, ...], bytes] = {}

    def published(self) -> dict[str, Feed]:
        """The feeds whose generator record is published, by at:// URI (read on every request:
        `feeds publish` and `unpublish` show at once)."""
        return {uri: self.feeds[key] for key, uri in self.store.feed_generators().items()
                if key in self.feeds}

    async def did_document(self, request: Request) -> JSONResponse:
        if not self.public_url or self.did != did_web(self.public_url):
            return JSONResponse({"error": "NotFound", "message": "the feed service is not this site's "
                                 "did:web"}, 404)
        return JSONResponse({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": self.did,
            "service": [{"id": "#bsky_fg", "type": "BskyFeedGenerator", "serviceEndpoint": self.public_url}],
        })

    async def describe(self, request: Request) -> JSONResponse:
        return JSONResponse({"did": self.did, "feeds": [{"uri": uri} for uri in self.published()]})

    async def skeleton(self, request: Request) -> Response:
        """A page, the same for everyone: kept until the database changes (`Store.version`, moved
        by any write, from any process), so the pages everyone asks for cost no query."""
        try:
            await self.auth.verify(request.headers.get("authorization"))
            version, params = self.store.version(), request.query_params
            key = (params.get("feed"), params.get("limit"), params.get("cursor"))
            if version != self._version:
                self._pages.clear()
                self._version = version
            body = self._pages.get(key)
            if body is None:
                body = orjson.dumps(skeleton(self.store, self.published(), params))
                if len(self._pages) >= PAGES_KEPT:
                    self._pages.clear()
                self._pages[key] = body
            return Response(body, media_type="application/json")
        except XrpcError as e:
            return JSONResponse(e.body(), e.status)
