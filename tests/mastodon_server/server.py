"""`MastodonServer`: runs the fake Mastodon in a background thread on 127.0.0.1.

Why: tests and the bot use blocking clients (Mastodon.py/requests), so the
aiohttp app gets its own thread and event loop; the Python control API below
manipulates the same `World` the HTTP handlers use, so streams and
notifications fire exactly as for API calls.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from datetime import datetime
from typing import Any, Optional

from aiohttp import web

from . import entities
from .app import Core, build_app, jres, resolve_remote
from .faults import Faults
from .flavours import FLAVOURS, sort_key
from .state import IDEMPOTENCY_TTL, Account, Event, Status, World


class MastodonServer:
    """A real HTTP+SSE+WebSocket Mastodon API on 127.0.0.1 whose state tests own."""

    def __init__(
        self,
        port: int = 0,
        domain: Optional[str] = None,
        max_characters: int = 500,
        rate_limit: int = 300,
        rate_limit_period: float = 300.0,
        heartbeat: float = 15.0,
        oauth_metadata: bool = False,
        idempotency_ttl: float = IDEMPOTENCY_TTL,
        flavour: str = "mastodon",
    ) -> None:
        self.flavour = FLAVOURS[flavour]  # which server family to imitate (flavours.py)
        self._requested_port = port
        self._domain = domain
        self.port = 0
        self._init_domain = domain
        self.core: Optional[Core] = None
        self._settings = dict(
            max_characters=max_characters, heartbeat=heartbeat, oauth_metadata=oauth_metadata
        )
        self._rate = (rate_limit, rate_limit_period)
        self._idempotency_ttl = idempotency_ttl
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._started = threading.Event()
        self._startup_error: Optional[BaseException] = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> MastodonServer:
        """Start (or restart on the same port, keeping all state)."""
        if self._thread is not None:
            return self
        if self.port == 0:
            self.port = self._requested_port or _free_port()
        if self.core is None:
            world = World(
                self._domain or f"127.0.0.1:{self.port}",
                scheme="https" if self._domain else "http",
                idempotency_ttl=self._idempotency_ttl,
                flavour=self.flavour,
            )
            self.core = Core(world, **self._settings)  # type: ignore[arg-type]
            self.core.limiter.limit, self.core.limiter.period = self._rate
        self.core.http_base = self.base_url
        self._started.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=f"mastodon-server-{self.port}", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._startup_error is not None:
            self._thread = None
            raise self._startup_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        assert self.core is not None
        self.core.hub.loop = loop
        try:
            self._runner = web.AppRunner(
                build_app(self.core, self._test_routes),
                handle_signals=False,
                access_log=None,
                shutdown_timeout=0.5,
            )
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            loop.run_until_complete(site.start())
        except BaseException as exc:  # surface bind errors to start()
            self._startup_error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        self.core.hub._drop_all_now()
        loop.run_until_complete(self._runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self) -> None:
        """Stop serving; state is kept so `start()` again acts as a server restart."""
        if self._thread is None or self._loop is None:
            return
        assert self.core is not None
        self.core.hub.loop = None
        loop = self._loop
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> MastodonServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def world(self) -> World:
        assert self.core is not None, "start() the server first"
        return self.core.world

    @property
    def domain(self) -> str:
        return self.world.domain

    @property
    def faults(self) -> Faults:
        assert self.core is not None
        return self.core.faults

    # ------------------------------------------------------------ control API
    def create_account(
        self, username: str, note: str = "", bot: bool = False, display_name: str = ""
    ) -> tuple[str, str]:
        """Create a local account and a user token for it; returns (account_id, token)."""
        acc = self.world.create_account(username, note=note, bot=bot, display_name=display_name)
        return acc.id, self.world.issue_token(acc.id).token

    def account(self, username: str) -> Account:
        acc = self.world.find_account(username)
        if acc is None:
            raise KeyError(username)
        return acc

    def _aid(self, who: str) -> str:
        return who if who in self.world.accounts else self.account(who).id

    def follow(self, follower: str, followed: str) -> None:
        """Accepts usernames/accts or account ids."""
        self.world.follow(self._aid(follower), self._aid(followed))

    def unfollow(self, follower: str, followed: str) -> None:
        self.world.unfollow(self._aid(follower), self._aid(followed))

    def post(
        self,
        username: str,
        text: str,
        visibility: str = "public",
        in_reply_to_id: Optional[str] = None,
        spoiler_text: str = "",
        idempotency_key: Optional[str] = None,
        created_at: Optional[datetime] = None,
    ) -> dict[str, Any]:
        """Post as `username` through the API code path; returns the Status JSON. `created_at`
        backdates it (a post that reaches the server late, e.g. through federation)."""
        assert self.core is not None
        aid = self._aid(username)
        st = self.world.post(
            aid,
            text,
            visibility=visibility,
            in_reply_to_id=in_reply_to_id,
            spoiler_text=spoiler_text,
            idempotency_key=idempotency_key,
            max_characters=self.core.max_characters,
            created_at=created_at,
        )
        return self.status_json(st.id, viewer=aid)

    def receive(self, acct: str, text: str, uri: str, url: Optional[str] = None,
                in_reply_to_id: Optional[str] = None, visibility: str = "public") -> dict[str, Any]:
        """A status by the remote account `acct` (user@domain, created on first use) as it reaches
        this server: with its origin's uri and url, e.g. Bridgy Fed's copy of a Bluesky post
        (`https://bsky.brid.gy/convert/ap/at://...`, by `handle@bsky.brid.gy`)."""
        username, domain = acct.split("@", 1)
        acc = self.world.find_account(acct) or self.world.create_account(
            username, domain=domain, url=f"https://{domain}/ap/{username}",
            uri=f"https://{domain}/ap/{username}")
        st = self.world.post(acc.id, text, visibility=visibility, in_reply_to_id=in_reply_to_id,
                             uri=uri, url=url)
        return self.status_json(st.id)

    def set_reblog_policy(self, username: str, policy: str) -> None:
        """GoToSocial's `can_reblog` for the account's posts: "public", "approval" or "nobody"."""
        self.account(username).reblog_policy = policy

    def delete(self, status_id: str) -> None:
        self.world.delete(None, status_id)

    def edit(self, status_id: str, text: str) -> dict[str, Any]:
        st = self.world.status(status_id)
        self.world.edit(st.account_id, status_id, text)
        return self.status_json(status_id)

    def reblog(self, username: str, status_id: str) -> dict[str, Any]:
        st = self.world.reblog(self._aid(username), status_id)
        return self.status_json(st.id)

    def favourite(self, username: str, status_id: str) -> None:
        self.world.favourite(self._aid(username), status_id)

    def status_json(self, status_id: str, viewer: Optional[str] = None) -> dict[str, Any]:
        with self.world.lock:
            return entities.status(self.world, self.world.status(status_id), viewer)

    def statuses(self, username: Optional[str] = None, include_reblogs: bool = False) -> list[Status]:
        """Live statuses, oldest first (optionally only one author's)."""
        with self.world.lock:
            out = [s for s in self.world.statuses.values() if include_reblogs or s.reblog_of_id is None]
            if username is not None:
                aid = self._aid(username)
                out = [s for s in out if s.account_id == aid]
            return sorted(out, key=lambda s: sort_key(s.id))

    def reblogs(self) -> list[tuple[str, str]]:
        """(account_id, status_id) pairs."""
        with self.world.lock:
            return list(self.world.reblogs)

    def favourites(self) -> list[tuple[str, str]]:
        with self.world.lock:
            return list(self.world.favourites)

    def notifications(self, username: str) -> list[dict[str, Any]]:
        aid = self._aid(username)
        with self.world.lock:
            items = sorted(
                (n for n in self.world.notifications.values() if n.account_id == aid),
                key=lambda n: sort_key(n.id),
            )
            return [entities.notification(self.world, n) for n in items]

    @property
    def requests_log(self) -> list[dict[str, Any]]:
        assert self.core is not None
        with self.core.log_lock:
            return list(self.core.requests_log)

    def requests(
        self, method: Optional[str] = None, path_regex: Optional[str] = None, status: Optional[int] = None
    ) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests_log
            if (method is None or r["method"] == method)
            and (path_regex is None or re.search(path_regex, r["path"]))
            and (status is None or r["status"] == status)
        ]

    # faults ----------------------------------------------------------------
    @property
    def streaming_enabled(self) -> bool:
        return self.faults.streaming_enabled

    @streaming_enabled.setter
    def streaming_enabled(self, value: bool) -> None:
        self.faults.streaming_enabled = value
        if not value:
            self.drop_streams()

    @property
    def hashtag_stream_enabled(self) -> bool:
        return self.faults.hashtag_stream_enabled

    @hashtag_stream_enabled.setter
    def hashtag_stream_enabled(self, value: bool) -> None:
        self.faults.hashtag_stream_enabled = value

    @property
    def rate_limit(self) -> int:
        assert self.core is not None
        return self.core.limiter.limit

    @rate_limit.setter
    def rate_limit(self, value: int) -> None:
        self.set_rate_limit(value)

    def set_rate_limit(self, limit: int, period: Optional[float] = None) -> None:
        assert self.core is not None
        self.core.limiter.limit = limit
        if period is not None:
            self.core.limiter.period = period
        self.core.limiter.reset()

    def force_status(
        self, path_regex: str, status_code: int, count: int = 1, retry_after: Optional[float] = None
    ) -> None:
        self.faults.force_status(path_regex, status_code, count, retry_after)

    def delay(self, path_regex: str, seconds: float) -> None:
        self.faults.delay(path_regex, seconds)

    def drop_streams(self) -> None:
        assert self.core is not None
        self.core.hub.drop_all()

    def open_streams(self) -> int:
        """Number of currently open SSE/WebSocket streams."""
        assert self.core is not None
        return len(self.core.hub.connections)

    def streams_opened(self) -> int:
        """Total streams ever opened (grows on client reconnects)."""
        assert self.core is not None
        return self.core.hub.total_opened

    # federation ----------------------------------------------------------------
    def known_remote(self, other: MastodonServer, auto_federate: bool = False) -> None:
        """Let search(resolve=True) fetch from `other`; optionally mirror its public posts live."""
        assert self.core is not None and other.core is not None
        self.core.remotes[other.domain] = other.core
        if auto_federate:
            other.world.listeners.append(lambda ev: self._mirror(ev, other.world))

    def _mirror(self, ev: Event, origin: World) -> None:
        st = ev.status
        if st is None or not st.local or st.reblog_of_id is not None:
            return
        if ev.name == "update" and st.visibility == "public":
            self.world.import_remote(st, origin)
        elif ev.name in ("delete", "status.update"):
            copy = next((s for s in list(self.world.statuses.values()) if s.uri == st.uri), None)
            if copy is None:
                return
            if ev.name == "delete":
                self.world.delete(None, copy.id)
            else:
                with self.world.lock:
                    copy.text, copy.content, copy.tags = st.text, st.content, list(st.tags)
                    copy.edited_at = st.edited_at
                self.world.updated(copy)

    def federate(self, remote_status_url: str) -> dict[str, Any]:
        """Resolve a status URL/URI from a linked server into a local copy; returns local Status JSON."""
        assert self.core is not None
        statuses, _ = resolve_remote(self.core, remote_status_url)
        if not statuses:
            raise KeyError(remote_status_url)
        return self.status_json(statuses[0].id)

    def state_summary(self) -> dict[str, Any]:
        with self.world.lock:
            tokens: dict[str, str] = {}
            for t in self.world.tokens.values():
                if t.account_id:
                    tokens.setdefault(self.world.accounts[t.account_id].acct, t.token)
            return {
                "base_url": self.base_url,
                "domain": self.domain,
                "accounts": {a.acct: a.id for a in self.world.accounts.values()},
                "tokens": tokens,
            }

    # HTTP control API (/_test/...) for out-of-process users such as `make demo` --------
    def _test_routes(self, app: web.Application) -> None:
        async def body(request: web.Request) -> dict[str, Any]:
            return await request.json() if request.can_read_body else {}

        async def accounts(request: web.Request) -> web.Response:
            b = await body(request)
            aid, tok = self.create_account(b["username"], note=b.get("note", ""), bot=bool(b.get("bot")))
            return jres({"id": aid, "token": tok})

        async def post(request: web.Request) -> web.Response:
            b = await body(request)
            return jres(
                self.post(
                    b["username"],
                    b["text"],
                    visibility=b.get("visibility", "public"),
                    in_reply_to_id=b.get("in_reply_to_id"),
                )
            )

        async def follow(request: web.Request) -> web.Response:
            b = await body(request)
            self.follow(b["follower"], b["followed"])
            return jres({})

        async def delete(request: web.Request) -> web.Response:
            self.delete((await body(request))["id"])
            return jres({})

        async def edit(request: web.Request) -> web.Response:
            b = await body(request)
            return jres(self.edit(b["id"], b["text"]))

        async def faults(request: web.Request) -> web.Response:
            b = await body(request)
            if "streaming_enabled" in b:
                self.streaming_enabled = bool(b["streaming_enabled"])
            if "hashtag_stream_enabled" in b:
                self.hashtag_stream_enabled = bool(b["hashtag_stream_enabled"])
            if "rate_limit" in b:
                self.set_rate_limit(int(b["rate_limit"]), b.get("rate_limit_period"))
            if "force_status" in b:
                self.force_status(**b["force_status"])
            if "delay" in b:
                self.delay(**b["delay"])
            if b.get("drop_streams"):
                self.drop_streams()
            if b.get("clear"):
                self.faults.clear()
            return jres({"ok": True})

        async def requests_(request: web.Request) -> web.Response:
            return jres(self.requests_log)

        async def state(request: web.Request) -> web.Response:
            return jres(self.state_summary())

        async def statuses(request: web.Request) -> web.Response:
            return jres([self.status_json(s.id) for s in self.statuses(include_reblogs=True)])

        app.router.add_post("/_test/accounts", accounts)
        app.router.add_post("/_test/post", post)
        app.router.add_post("/_test/follow", follow)
        app.router.add_post("/_test/delete", delete)
        app.router.add_post("/_test/edit", edit)
        app.router.add_post("/_test/faults", faults)
        app.router.add_get("/_test/requests", requests_)
        app.router.add_get("/_test/state", state)
        app.router.add_get("/_test/statuses", statuses)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["MastodonServer"]
