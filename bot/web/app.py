"""The web application: the veille's public site, its feeds and the moderation desk, one ASGI app
(Starlette) that reads through the store and sends moderators' decisions through the rules.

`create_app(config, store, dispatch=..., extra_routes=...)`. The Bluesky feed service's routes
(/.well-known/did.json, /xrpc/app.bsky.feed.*, `bot/feedgen`) are mounted when
`[bluesky.feeds] enabled`; `extra_routes` mounts more (tests give the feed service a key cache of
their own that way). All get the same security headers and come before the site's own routes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from bot.config import Config
from bot.curator import Curator
from bot.feedgen.routes import routes as feed_service
from bot.model import Event
from bot.store import Store
from bot.web import desk, feeds, pages
from bot.web.auth import SESSION_SECONDS, RateLimit, session_secret
from bot.web.security import SecurityHeaders
from bot.web.site import Site

STATIC = Path(__file__).parent / "static"


def create_app(config: Config, store: Store, *, dispatch: Callable[[Event], Any] | None = None,
               extra_routes: Sequence[BaseRoute] = (), secret: str | None = None,
               cache_seconds: float = 2.0) -> Starlette:
    """The site over `store`. `dispatch` takes a moderator's decision (an event): by default a
    Curator of this store, whose intents stay pending for the running bot's effect worker; `run`
    passes its runtime's `emit`, which also queues them at once. `cache_seconds`: how long a
    built digest page (/, /archive/PERIOD) is reused."""
    site = Site(config, store, dispatch or Curator(config, store).handle, cache_seconds)
    routes = [*extra_routes, *feed_service(config, store), *pages.ROUTES, *feeds.ROUTES, *desk.ROUTES,
              Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=secret or session_secret(config.database),
                   session_cookie="numpolville_session", max_age=SESSION_SECONDS, same_site="lax",
                   https_only=config.web.public_url.startswith("https://")),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: pages.error_page})
    app.state.site = site
    app.state.login_limit = RateLimit()
    return app
