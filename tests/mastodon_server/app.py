"""aiohttp application: the Mastodon REST, OAuth and streaming routes.

Why: the bot talks to Mastodon only over HTTP, so the fake has to be a real
HTTP server; handlers are thin and delegate every mutation to `World` so
streams, notifications and the Python control API stay consistent.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional
from urllib.parse import urlencode, urlparse

from aiohttp import WSMsgType, web
from multidict import MultiDict, MultiDictProxy

from . import entities
from .faults import Faults, RateLimiter
from .flavours import sort_key
from .state import ApiError, Event, Status, Token, World
from .streaming import SENTINEL, Connection, Hub, sse_frame, stream_key, ws_frame

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TRUE = {"1", "true", "True", "on", "yes"}


@dataclass
class Core:
    """Everything one server instance owns, shared by handlers and the Python control API."""

    world: World
    max_characters: int = 500
    heartbeat: float = 15.0
    oauth_metadata: bool = False
    faults: Faults = field(default_factory=Faults)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    remotes: dict[str, Core] = field(default_factory=dict)
    requests_log: list[dict[str, Any]] = field(default_factory=list)
    log_lock: threading.Lock = field(default_factory=threading.Lock)
    http_base: str = ""
    hub: Hub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = Hub(self.world)
        self.world.listeners.append(self.hub.publish)

    @property
    def streaming_url(self) -> str:
        """ws://, or wss:// on the same plain port to make the TLS handshake fail (a streaming
        host behind a proxy that does not speak TLS, or GoToSocial's https-only URL)."""
        scheme = "wss" if self.faults.streaming_wss else "ws"
        return scheme + self.http_base[len("http") :]


# ---------------------------------------------------------------- helpers
CORE_KEY: web.AppKey[Core] = web.AppKey("core")
TOKEN_KEY: web.RequestKey[Token] = web.RequestKey("token")


def core_of(request: web.Request) -> Core:
    return request.app[CORE_KEY]


def jres(data: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> web.Response:
    return web.Response(
        text=json.dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def err(status: int, message: str, headers: Optional[dict[str, str]] = None) -> web.Response:
    return jres({"error": message}, status, headers)


async def params(request: web.Request) -> MultiDict[str]:
    """Query + form/JSON body merged, like Rails params."""
    out: MultiDict[str] = MultiDict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Invalid JSON") from None
            if isinstance(body, dict):
                for k, v in body.items():
                    for item in v if isinstance(v, list) else [v]:
                        out.add(
                            k,
                            item
                            if isinstance(item, str)
                            else json.dumps(item)
                            if not isinstance(item, (bool, int))
                            else str(item).lower(),
                        )
        else:
            form: MultiDictProxy[Any] = await request.post()
            for k, v in form.items():
                if isinstance(v, str):
                    out.add(k, v)
    return out


def plist(p: MultiDict[str], name: str) -> list[str]:
    return p.getall(name + "[]", []) + p.getall(name, [])


def token_of(request: web.Request) -> Optional[Token]:
    return request.get(TOKEN_KEY)


def me(request: web.Request) -> str:
    tok = token_of(request)
    if tok is None or tok.account_id is None:
        raise ApiError(
            401,
            "The access token is invalid" if tok is None else "This method requires an authenticated user",
        )
    return tok.account_id


def viewer(request: web.Request) -> Optional[str]:
    tok = token_of(request)
    return tok.account_id if tok else None


def can_see(w: World, st: Status, who: Optional[str]) -> bool:
    if st.visibility in ("public", "unlisted"):
        return True
    if who is None:
        return False
    if who == st.account_id or who in st.mention_ids:
        return True
    return st.visibility == "private" and (who, st.account_id) in w.follows


def paginate(
    request: web.Request,
    items: list[Any],
    p: MultiDict[str],
    key: Callable[[Any], Any],
    default: int = 20,
    maximum: int = 40,
    kept: tuple[str, ...] | None = None,
) -> tuple[list[Any], dict[str, str]]:
    """Mastodon id paging: max_id/since_id/min_id + Link header with next/prev, in the flavour's
    form: Mastodon's links keep only the endpoint's `kept` parameters (its PERMITTED_PARAMS: a
    tag timeline's link drops `remote`, `any`, `all`, `none`), GoToSocial's carry `limit` and the
    id alone (internal/util/paging.go), Pleroma's and Akkoma's every parameter but the ids
    (ControllerHelper.build_pagination_fields). None keeps them all (the endpoints whose exact
    list the bot never meets)."""
    try:
        limit = min(max(int(p.get("limit", default)), 1), maximum)
    except ValueError:
        limit = default
    rank = lambda i: sort_key(str(key(i)))  # noqa: E731 - ids compare as the server orders them
    items = sorted(items, key=rank, reverse=True)
    if p.get("max_id"):
        items = [i for i in items if rank(i) < sort_key(p["max_id"])]
    if p.get("since_id"):
        items = [i for i in items if rank(i) > sort_key(p["since_id"])]
    if p.get("min_id"):
        items = [i for i in items if rank(i) > sort_key(p["min_id"])][-limit:]
    page = items[:limit]
    headers: dict[str, str] = {}
    if page:
        base = f"{core_of(request).http_base}{request.path}"
        keep = [(k, v) for k, v in request.query.items() if k not in ("max_id", "min_id", "since_id")]
        flavour = core_of(request).world.flavour.name
        if flavour == "gotosocial":
            keep = [("limit", str(limit))]
        elif flavour == "mastodon" and kept is not None:
            keep = [(k, v) for k, v in keep if k in kept]
        nxt = urlencode(keep + [("max_id", str(key(page[-1])))])
        prv = urlencode(keep + [("min_id", str(key(page[0])))])
        headers["Link"] = f'<{base}?{nxt}>; rel="next", <{base}?{prv}>; rel="prev"'
    return page, headers


def httpdate(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- middleware
@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    core = core_of(request)
    started = time.time()
    status = 500
    try:
        resp = await _inner(request, handler, core)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if not request.path.startswith("/_test"):
            with core.log_lock:
                core.requests_log.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "query": request.query_string,
                        "status": status,
                        "time": started,
                        "duration": time.time() - started,
                    }
                )


async def _inner(request: web.Request, handler: Handler, core: Core) -> web.StreamResponse:
    if request.path.startswith("/_test"):
        return await handler(request)
    delay = core.faults.delay_for(request.path)
    if delay:
        await asyncio.sleep(delay)
    auth = request.headers.get("Authorization", "")
    key = request.remote or "anon"
    if auth.lower().startswith("bearer "):
        tok = core.world.tokens.get(auth[7:].strip())
        if tok is None:
            return err(401, "The access token is invalid")
        request[TOKEN_KEY] = tok
        key = "token:" + tok.token
    streaming = request.path.startswith("/api/v1/streaming")
    rl_headers: dict[str, str] = {}
    if not streaming:
        allowed, remaining, reset = core.limiter.hit(key)
        rl_headers = {
            "X-RateLimit-Limit": str(core.limiter.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": httpdate(reset),
        }
        if not allowed:
            rl_headers["Retry-After"] = str(max(1, int(reset - time.time() + 0.999)))
            return err(429, "Too many requests", rl_headers)
    forced = core.faults.take_forced(request.path)
    if forced is not None:
        headers = dict(rl_headers)
        if forced.retry_after is not None:
            headers["Retry-After"] = str(int(forced.retry_after + 0.999))
            if forced.status == 429:
                headers["X-RateLimit-Remaining"] = "0"
                headers["X-RateLimit-Reset"] = httpdate(time.time() + forced.retry_after)
        messages = {
            429: "Too many requests",
            500: "We're sorry, but something went wrong on our end.",
            502: "Bad Gateway",
            503: "Service Unavailable",
        }
        return err(forced.status, messages.get(forced.status, "Error"), headers)
    try:
        resp = await handler(request)
    except ApiError as exc:
        resp = err(exc.status, exc.message)
    if not resp.prepared:
        resp.headers.update(rl_headers)
        if not core.faults.link_headers:
            resp.headers.pop("Link", None)
    return resp


# ---------------------------------------------------------------- instance & discovery
async def instance_v1(request: web.Request) -> web.Response:
    c = core_of(request)
    with c.world.lock:
        return jres(entities.instance_v1(c.world, c.http_base, c.max_characters, c.streaming_url))


async def instance_v2(request: web.Request) -> web.Response:
    c = core_of(request)
    with c.world.lock:
        return jres(entities.instance_v2(c.world, c.http_base, c.max_characters, c.streaming_url))


async def nodeinfo_wellknown(request: web.Request) -> web.Response:
    return jres(
        {
            "links": [
                {
                    "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                    "href": f"{core_of(request).http_base}/nodeinfo/2.0",
                }
            ]
        }
    )


async def nodeinfo(request: web.Request) -> web.Response:
    c = core_of(request)
    with c.world.lock:
        return jres(entities.nodeinfo(c.world))


async def oauth_metadata(request: web.Request) -> web.Response:
    c = core_of(request)
    if not c.oauth_metadata:
        return err(404, "Not Found")
    b = c.http_base
    return jres(
        {
            "issuer": b + "/",
            "authorization_endpoint": b + "/oauth/authorize",
            "token_endpoint": b + "/oauth/token",
            "revocation_endpoint": b + "/oauth/revoke",
            "scopes_supported": ["read", "write", "follow", "push"],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials", "password"],
            "app_registration_endpoint": b + "/api/v1/apps",
        }
    )


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


async def streaming_health(request: web.Request) -> web.Response:
    core = core_of(request)
    if not core.faults.streaming_enabled or not core.world.flavour.sse:
        return err(404, "Not Found")
    return web.Response(text="OK", content_type="text/plain")


# ---------------------------------------------------------------- apps & oauth
async def create_app(request: web.Request) -> web.Response:
    p = await params(request)
    name = p.get("client_name", "")
    if not name:
        raise ApiError(422, "Validation failed: Application name can't be blank")
    uris = plist(p, "redirect_uris") or ["urn:ietf:wg:oauth:2.0:oob"]
    uris = [u for raw in uris for u in raw.split()]
    scopes = (p.get("scopes") or "read").split()
    app = core_of(request).world.create_app(name, uris, scopes, p.get("website"))
    return jres(entities.application(app))


async def authorize(request: web.Request) -> web.StreamResponse:
    """Auto-approving consent page: `username=` picks who logs in (test-only extension)."""
    w = core_of(request).world
    q = request.query
    app = w.apps.get(q.get("client_id", ""))
    if app is None:
        return web.Response(
            status=401,
            text="<p>Client authentication failed due to unknown client</p>",
            content_type="text/html",
        )
    redirect_uri = q.get("redirect_uri", app.redirect_uris[0])
    if redirect_uri not in app.redirect_uris:
        return web.Response(
            status=400, text="<p>The redirect uri included is not valid.</p>", content_type="text/html"
        )
    username = q.get("username")
    acc = w.find_account(username) if username else None
    if acc is None:
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in q.items()
            if k != "username"
        )
        page = (
            f'<html><body><form method="get" action="/oauth/authorize">{fields}'
            f'<input name="username" placeholder="username"><button>Authorize</button></form></body></html>'
        )
        return web.Response(text=page, content_type="text/html")
    code = secrets.token_urlsafe(24)
    w.auth_codes[code] = (app.client_id, acc.id, (q.get("scope") or " ".join(app.scopes)).split())
    if redirect_uri == "urn:ietf:wg:oauth:2.0:oob":
        page = (
            '<html><body><div class="oauth-prompt"><h3 class="title">Copy this authorization code '
            "and paste it to the application.</h3>"
            f'<input class="oauth-code" readonly type="text" value="{code}">'
            f"</div></body></html>"
        )
        return web.Response(text=page, content_type="text/html")
    extra = {"code": code}
    if q.get("state"):
        extra["state"] = q["state"]
    sep = "&" if "?" in redirect_uri else "?"
    raise web.HTTPFound(redirect_uri + sep + urlencode(extra))


async def oauth_token(request: web.Request) -> web.Response:
    w = core_of(request).world
    p = await params(request)
    app = w.apps.get(p.get("client_id", ""))
    if app is None or app.client_secret != p.get("client_secret"):
        return jres(
            {
                "error": "invalid_client",
                "error_description": "Client authentication failed due to "
                "unknown client, no client authentication included, or unsupported authentication method.",
            },
            401,
        )
    grant = p.get("grant_type")
    scopes = (p.get("scope") or " ".join(app.scopes)).split()
    account_id: Optional[str] = None
    if grant == "authorization_code":
        entry = w.auth_codes.pop(p.get("code", ""), None)
        if entry is None or entry[0] != app.client_id:
            return jres(
                {
                    "error": "invalid_grant",
                    "error_description": "The provided authorization grant is "
                    "invalid, expired, revoked, does not match the redirection URI used in the "
                    "authorization request, or was issued to another client.",
                },
                400,
            )
        account_id, scopes = entry[1], entry[2]
    elif grant == "password":
        acc = w.find_account((p.get("username") or "").split("@")[0])
        if acc is None:
            return jres({"error": "invalid_grant", "error_description": "Invalid credentials"}, 400)
        account_id = acc.id
    elif grant != "client_credentials":
        return jres({"error": "unsupported_grant_type", "error_description": "Unsupported grant type"}, 400)
    tok = w.issue_token(account_id, app.id, scopes)
    return jres(
        {
            "access_token": tok.token,
            "token_type": "Bearer",
            "scope": " ".join(tok.scopes),
            "created_at": int(tok.created_at),
        }
    )


async def oauth_revoke(request: web.Request) -> web.Response:
    p = await params(request)
    core_of(request).world.tokens.pop(p.get("token", ""), None)
    return jres({})


async def app_verify(request: web.Request) -> web.Response:
    tok = token_of(request)
    if tok is None:
        raise ApiError(401, "The access token is invalid")
    w = core_of(request).world
    app = next((a for a in w.apps.values() if a.id == tok.app_id), None)
    if app is None:
        return jres(
            {"name": "Web", "website": None, "scopes": tok.scopes, "redirect_uris": [], "redirect_uri": ""}
        )
    return jres(entities.application(app, with_secret=False))


# ---------------------------------------------------------------- accounts
async def verify_credentials(request: web.Request) -> web.Response:
    w = core_of(request).world
    with w.lock:
        return jres(entities.account(w, w.account(me(request)), credentials=True))


async def update_credentials(request: web.Request) -> web.Response:
    w = core_of(request).world
    p = await params(request)
    with w.lock:
        acc = w.account(me(request))
        if "note" in p:
            acc.note = p["note"]
        if "display_name" in p:
            acc.display_name = p["display_name"]
        if "bot" in p:
            acc.bot = p["bot"] in TRUE
        if "locked" in p:
            acc.locked = p["locked"] in TRUE
        return jres(entities.account(w, acc, credentials=True))


async def get_account(request: web.Request) -> web.Response:
    w = core_of(request).world
    with w.lock:
        return jres(entities.account(w, w.account(request.match_info["id"])))


async def lookup_account(request: web.Request) -> web.Response:
    w = core_of(request).world
    acc = w.find_account(request.query.get("acct", ""))
    if acc is None:
        raise ApiError(404, "Record not found")
    with w.lock:
        return jres(entities.account(w, acc))


async def relationships(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    ids = plist(MultiDict(request.query), "id")
    with w.lock:
        return jres([entities.relationship(w, who, i) for i in ids if i in w.accounts])


async def follow_list(request: web.Request) -> web.Response:
    w = core_of(request).world
    aid = request.match_info["id"]
    kind = request.match_info["kind"]
    with w.lock:
        w.account(aid)
        if kind == "followers":
            rows = [(fid, a) for (a, b), fid in w.follows.items() if b == aid]
        else:
            rows = [(fid, b) for (a, b), fid in w.follows.items() if a == aid]
        page, headers = paginate(
            request, rows, MultiDict(request.query), key=lambda r: r[0], default=40, maximum=80
        )
        return jres([entities.account(w, w.accounts[r[1]]) for r in page], headers=headers)


async def follow_action(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    target = request.match_info["id"]
    w.account(target)
    if request.match_info["action"] == "follow":
        w.follow(who, target)
    else:
        w.unfollow(who, target)
    with w.lock:
        return jres(entities.relationship(w, who, target))


async def account_statuses(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = viewer(request)
    aid = request.match_info["id"]
    with w.lock:
        w.account(aid)
        items = [s for s in w.statuses.values() if s.account_id == aid and can_see(w, s, who)]
        page, headers = paginate(request, items, MultiDict(request.query), key=lambda s: s.id)
        return jres([entities.status(w, s, who) for s in page], headers=headers)


# ---------------------------------------------------------------- statuses
async def post_status(request: web.Request) -> web.Response:
    c = core_of(request)
    p = await params(request)
    who = me(request)
    tok = token_of(request)
    app = next((a for a in c.world.apps.values() if tok and a.id == tok.app_id), None)
    key = request.headers.get("Idempotency-Key")
    replayed = bool(key and c.world.flavour.replay_header and c.world.replays(who, key))
    st = c.world.post(
        who,
        p.get("status", ""),
        visibility=p.get("visibility") or "public",
        in_reply_to_id=p.get("in_reply_to_id") or None,
        spoiler_text=p.get("spoiler_text") or "",
        sensitive=p.get("sensitive") in TRUE,
        language=p.get("language") or "en",
        idempotency_key=request.headers.get("Idempotency-Key"),
        max_characters=c.max_characters,
        application={"name": app.name, "website": app.website} if app else None,
    )
    with c.world.lock:
        return jres(entities.status(c.world, st, who),
                    headers={"idempotent-replayed": "true"} if replayed else None)


def _visible(request: web.Request) -> tuple[World, Status, Optional[str]]:
    w = core_of(request).world
    who = viewer(request)
    st = w.status(request.match_info["id"])
    if not can_see(w, st, who):
        raise ApiError(404, "Record not found")
    return w, st, who


async def get_status(request: web.Request) -> web.Response:
    w, st, who = _visible(request)
    with w.lock:
        return jres(entities.status(w, st, who))


async def delete_status(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    st = w.delete(who, request.match_info["id"])
    with w.lock:
        out = entities.status(w, st, who)
    out["text"] = st.text
    return jres(out)


async def edit_status(request: web.Request) -> web.Response:
    c = core_of(request)
    p = await params(request)
    who = me(request)
    text = p.get("status", "")
    if len(text) > c.max_characters:
        raise ApiError(422, f"Validation failed: Text character limit of {c.max_characters} exceeded")
    st = c.world.edit(who, request.match_info["id"], text, p.get("spoiler_text"))
    with c.world.lock:
        return jres(entities.status(c.world, st, who))


async def context(request: web.Request) -> web.Response:
    if core_of(request).world.flavour.token_for_context:
        me(request)
    w, st, who = _visible(request)
    with w.lock:
        ancestors: list[Status] = []
        cur = st
        while cur.in_reply_to_id and cur.in_reply_to_id in w.statuses:
            cur = w.statuses[cur.in_reply_to_id]
            ancestors.insert(0, cur)
        descendants = _descendants(w, st.id)
        return jres(
            {
                "ancestors": [entities.status(w, s, who) for s in ancestors if can_see(w, s, who)],
                "descendants": [entities.status(w, s, who) for s in descendants if can_see(w, s, who)],
            }
        )


def _descendants(w: World, status_id: str) -> list[Status]:
    """Replies depth first, each one's replies right after it, siblings oldest first: Mastodon's
    order (its recursive query sorts by the path of ids from the status)."""
    out: list[Status] = []
    kids = [s for s in w.statuses.values() if s.in_reply_to_id == status_id]
    for kid in sorted(kids, key=lambda s: sort_key(s.id)):
        out += [kid, *_descendants(w, kid.id)]
    return out


async def status_action(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    sid = request.match_info["id"]
    action = request.match_info["action"]
    if action == "reblog":
        st = w.reblog(who, sid)
    elif action == "unreblog":
        st = w.unreblog(who, sid)
    elif action == "favourite":
        st = w.favourite(who, sid)
    elif action == "unfavourite":
        st = w.unfavourite(who, sid)
    else:
        raise ApiError(404, "Not Found")
    with w.lock:
        return jres(entities.status(w, st, who))


async def status_people(request: web.Request) -> web.Response:
    w, st, who = _visible(request)
    with w.lock:
        if request.match_info["kind"] == "reblogged_by":
            rows = [(w.reblogs[k], k[0]) for k in w.reblogs if k[1] == st.id]
        else:
            rows = [(fid, k[0]) for k, fid in w.favourites.items() if k[1] == st.id]
        page, headers = paginate(
            request, rows, MultiDict(request.query), key=lambda r: r[0], default=40, maximum=80
        )
        return jres([entities.account(w, w.accounts[r[1]]) for r in page], headers=headers)


# ---------------------------------------------------------------- timelines
async def tag_timeline(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = viewer(request)
    tag = request.match_info["tag"].lower().lstrip("#")
    q = MultiDict(request.query)
    if w.flavour.token_for_tag_timeline:
        me(request)
    if w.flavour.name == "gotosocial":  # its tag timeline knows only max_id/since_id/min_id/limit
        q = MultiDict((k, v) for k, v in q.items() if k in ("max_id", "since_id", "min_id", "limit"))
    with w.lock:
        if w.flavour.tag_404_until_used and not w.tag_used(tag):
            return err(404, "Not Found: tag was not found, or not useable/listable on this instance")
        items = [
            s
            for s in w.statuses.values()
            if tag in s.tags and s.visibility == "public" and s.reblog_of_id is None
        ]
        return _public_page(request, w, who, q, items, kept=("local", "limit", "only_media"))


def _public_page(request: web.Request, w: Any, who: Any, q: MultiDict[str], items: list[Any],
                 kept: tuple[str, ...]) -> web.Response:
    """One page of a public timeline (tag or public), with its `local`/`remote` filters."""
    if q.get("local") in TRUE:
        items = [s for s in items if s.local]
    if q.get("remote") in TRUE:
        items = [s for s in items if not s.local]
    page, headers = paginate(request, items, q, key=lambda s: s.id, kept=kept)
    return jres([entities.status(w, s, who) for s in page], headers=headers)


async def public_timeline(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = viewer(request)
    q = MultiDict(request.query)
    with w.lock:
        items = [s for s in w.statuses.values() if s.visibility == "public" and s.reblog_of_id is None]
        return _public_page(request, w, who, q, items, kept=("local", "remote", "limit", "only_media"))


async def home_timeline(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    with w.lock:
        followed = set(w.following_of(who)) | {who}
        items = [s for s in w.statuses.values()
                 if (s.account_id in followed and s.visibility != "direct") or who in w.tagged_for(s)]
        page, headers = paginate(request, items, MultiDict(request.query), key=lambda s: s.id)
        return jres([entities.status(w, s, who) for s in page], headers=headers)


# ---------------------------------------------------------------- followed tags
def _tag(w: World, name: str, who: Optional[str]) -> dict[str, Any]:
    return {"name": name, "url": f"{w.base}/tags/{name}", "history": [],
            "following": (who, name) in w.followed_tags if who else False}


async def get_tag(request: web.Request) -> web.Response:
    w = core_of(request).world
    return jres(_tag(w, request.match_info["name"].lower(), viewer(request)))


async def follow_tag(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    name = request.match_info["name"].lower().lstrip("#")
    with w.lock:
        if request.match_info["action"] == "follow":
            w.followed_tags.add((who, name))
        else:
            w.followed_tags.discard((who, name))
        return jres(_tag(w, name, who))


async def followed_tags(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    with w.lock:
        return jres([_tag(w, t, who) for a, t in sorted(w.followed_tags) if a == who])


# ---------------------------------------------------------------- notifications
async def notifications(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    q = MultiDict(request.query)
    types = set(plist(q, "types"))
    exclude = set(plist(q, "exclude_types"))
    with w.lock:
        items = [
            n
            for n in w.notifications.values()
            if n.account_id == who and (not types or n.type in types) and n.type not in exclude
        ]
        if q.get("account_id"):
            items = [n for n in items if n.from_account_id == q["account_id"]]
        page, headers = paginate(request, items, q, key=lambda n: n.id, default=40, maximum=80)
        return jres([entities.notification(w, n) for n in page], headers=headers)


async def get_notification(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    with w.lock:
        n = w.notifications.get(request.match_info["id"])
        if n is None or n.account_id != who:
            raise ApiError(404, "Record not found")
        return jres(entities.notification(w, n))


async def clear_notifications(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    with w.lock:
        for k in [k for k, n in w.notifications.items() if n.account_id == who]:
            del w.notifications[k]
    return jres({})


async def dismiss_notification(request: web.Request) -> web.Response:
    w = core_of(request).world
    who = me(request)
    with w.lock:
        n = w.notifications.get(request.match_info["id"])
        if n is None or n.account_id != who:
            raise ApiError(404, "Record not found")
        del w.notifications[n.id]
    return jres({})


# ---------------------------------------------------------------- search & federation
def resolve_remote(core: Core, q: str) -> tuple[list[Status], list[str]]:
    """Fetch a status or account from a linked server, as Mastodon does with resolve=true."""
    host = urlparse(q).netloc if "://" in q else ""
    statuses: list[Status] = []
    accounts: list[str] = []
    for domain, other in list(core.remotes.items()):
        ow = other.world
        if host and host == urlparse(ow.base).netloc:
            with ow.lock:
                origin = next(
                    (
                        s
                        for s in ow.statuses.values()
                        if (s.url == q or s.uri == q)
                        and s.visibility in ("public", "unlisted")
                        and s.reblog_of_id is None
                    ),
                    None,
                )
                if origin is None:
                    acc = next((a for a in ow.accounts.values() if a.url == q or a.uri == q), None)
                    if acc is not None:
                        accounts.append(core.world.remote_account(acc, ow).id)
            if origin is not None:
                statuses.append(core.world.import_remote(origin, ow))
        elif not host and q.lstrip("@").lower().endswith("@" + domain.lower()):
            acc = ow.find_account(q.lstrip("@").split("@")[0])
            if acc is not None and acc.domain is None:
                accounts.append(core.world.remote_account(acc, ow).id)
    return statuses, accounts


async def search_v2(request: web.Request) -> web.Response:
    c = core_of(request)
    w = c.world
    who = viewer(request)
    q = request.query.get("q", "").strip()
    kind = request.query.get("type")
    resolve = request.query.get("resolve") in TRUE
    try:
        limit = min(int(request.query.get("limit", 20)), 40)
    except ValueError:
        limit = 20
    with w.lock:
        statuses = [s for s in w.statuses.values() if q and (s.url == q or s.uri == q) and can_see(w, s, who)]
        accounts = [a.id for a in w.accounts.values() if q and (a.url == q or a.uri == q)]
        if "://" not in q and q:
            exact = w.find_account(q)
            if exact:
                accounts.append(exact.id)
            needle = q.lstrip("@").lower()
            accounts += [
                a.id
                for a in w.accounts.values()
                if needle and needle in a.acct.lower() and a.id not in accounts
            ]
    if resolve and who is not None and not statuses and not (accounts and "@" in q.lstrip("@")):
        more_s, more_a = resolve_remote(c, q)
        statuses += more_s
        accounts += [a for a in more_a if a not in accounts]
    tags = []
    if q.startswith("#") or ("://" not in q and q and " " not in q and "@" not in q):
        name = q.lstrip("#").lower()
        tags = [{"name": name, "url": f"{w.base}/tags/{name}", "history": []}] if name else []
    with w.lock:
        out = {
            "accounts": [entities.account(w, w.accounts[a]) for a in accounts][:limit],
            "statuses": [entities.status(w, s, who) for s in statuses][:limit],
            "hashtags": tags[:limit],
        }
    if kind:
        out = {k: (v if k == kind else []) for k, v in out.items()}
    return jres(out)


# ---------------------------------------------------------------- streaming
STREAM_PATHS = {
    "/api/v1/streaming/user": "user",
    "/api/v1/streaming/user/notification": "user:notification",
    "/api/v1/streaming/public": "public",
    "/api/v1/streaming/public/local": "public:local",
    "/api/v1/streaming/public/remote": "public:remote",
    "/api/v1/streaming/hashtag": "hashtag",
    "/api/v1/streaming/hashtag/local": "hashtag:local",
}


def _stream_allowed(core: Core, stream: str) -> bool:
    if not core.faults.streaming_enabled:
        return False
    return core.faults.hashtag_stream_enabled or not stream.startswith("hashtag")


async def _stream_tag(request: web.Request) -> Optional[str]:
    tag = request.query.get("tag")
    if tag is None and request.can_read_body:  # Mastodon.py sends params as a GET body
        tag = (await params(request)).get("tag")
    return tag


async def sse_stream(request: web.Request) -> web.StreamResponse:
    core = core_of(request)
    path = request.path.rstrip("/")
    stream = STREAM_PATHS[path]
    if not _stream_allowed(core, stream) or not core.faults.sse_enabled or not core.world.flavour.sse:
        return err(404, "Not Found")
    who = viewer(request)
    if stream.startswith("user") and who is None:
        return err(401, "Missing access token")
    key = stream_key(stream, who, await _stream_tag(request))
    if key is None:
        return err(400, "No tag for stream provided")
    conn = Connection(viewer=who, transport="sse", subs={key[0]: key[1]})
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "Transfer-Encoding": "chunked",
        }
    )
    await resp.prepare(request)
    core.hub.register(conn)
    try:
        await resp.write(b":)\n")
        while True:
            try:
                item = await asyncio.wait_for(conn.queue.get(), timeout=core.heartbeat)
            except TimeoutError:
                await resp.write(b":thump\n")
                continue
            if item is SENTINEL:
                if request.transport is not None:
                    request.transport.close()  # abrupt: no terminating chunk
                break
            _stream, event, payload = item
            await resp.write(sse_frame(event, payload))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        core.hub.connections.discard(conn)
    return resp


async def ws_stream(request: web.Request) -> web.StreamResponse:
    core = core_of(request)
    if not core.faults.streaming_enabled:
        return err(404, "Not Found")
    flavour = core.world.flavour
    if not flavour.ws_authorization_header:
        request.pop(TOKEN_KEY, None)  # Akkoma reads `access_token` or Sec-WebSocket-Protocol only
    token = request.query.get("access_token") or request.headers.get("Sec-WebSocket-Protocol")
    if token and TOKEN_KEY not in request:
        tok = core.world.tokens.get(token)
        if tok is None:
            return err(401, "Invalid access token")
        request[TOKEN_KEY] = tok
    who = viewer(request)
    ws = web.WebSocketResponse(
        heartbeat=None,
        protocols=[token] if token and request.headers.get("Sec-WebSocket-Protocol") == token else (),
    )
    await ws.prepare(request)
    conn = Connection(viewer=who, transport="ws")
    core.hub.register(conn)

    def subscribe(msg: dict[str, Any], on: bool, in_url: bool = False) -> Optional[str]:
        stream = str(msg.get("stream", ""))
        if not _stream_allowed(core, stream):
            return "Unknown stream type"
        key = stream_key(stream, who, msg.get("tag") if in_url or flavour.ws_subscribe_params else None)
        if key is None:
            return "No valid tag or user for stream"
        if flavour.fed_streams is not None and stream not in flavour.fed_streams:
            return None  # GoToSocial: accepted ("unknown 'stream' field" in its log), never fed
        if stream in core.faults.silent_streams:
            return None
        if on:
            conn.subs[key[0]] = key[1]
        else:
            conn.subs.pop(key[0], None)
        return None

    if request.query.get("stream"):
        problem = subscribe(dict(request.query), True, in_url=True)
        if problem:
            await ws.send_str(json.dumps({"error": problem, "status": 400}))

    async def reader() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if data.get("type") in ("subscribe", "unsubscribe"):
                problem = subscribe(data, data["type"] == "subscribe")
                if problem and flavour.ws_subscribe_params:  # Akkoma only logs a bad topic
                    await ws.send_str(json.dumps({"error": problem, "status": 400}))
        conn.queue.put_nowait(None)

    read_task = asyncio.create_task(reader())
    try:
        while True:
            item = await conn.queue.get()
            if item is None:
                break
            if item is SENTINEL:
                if request.transport is not None:
                    request.transport.close()
                break
            stream, event, payload = item
            await ws.send_str(ws_frame(stream, event, payload))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        read_task.cancel()
        core.hub.connections.discard(conn)
    return ws


# ---------------------------------------------------------------- app factory
def build_app(
    core: Core, extra_routes: Optional[Callable[[web.Application], None]] = None
) -> web.Application:
    app = web.Application(middlewares=[middleware])
    app[CORE_KEY] = core

    def add(method: str, path: str, handler: Handler) -> None:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)

    add("GET", "/api/v1/instance", instance_v1)
    add("GET", "/api/v2/instance", instance_v2)
    add("GET", "/.well-known/nodeinfo", nodeinfo_wellknown)
    add("GET", "/nodeinfo/2.0", nodeinfo)
    add("GET", "/.well-known/oauth-authorization-server", oauth_metadata)
    add("GET", "/health", health)
    add("GET", "/api/v1/streaming/health", streaming_health)
    add("POST", "/api/v1/apps", create_app)
    add("GET", "/api/v1/apps/verify_credentials", app_verify)
    add("GET", "/oauth/authorize", authorize)
    add("POST", "/oauth/token", oauth_token)
    add("POST", "/oauth/revoke", oauth_revoke)
    add("GET", "/api/v1/accounts/verify_credentials", verify_credentials)
    add("PATCH", "/api/v1/accounts/update_credentials", update_credentials)
    add("GET", "/api/v1/accounts/lookup", lookup_account)
    add("GET", "/api/v1/accounts/relationships", relationships)
    add("GET", "/api/v1/accounts/{id}", get_account)
    add("GET", "/api/v1/accounts/{id}/statuses", account_statuses)
    add("GET", "/api/v1/accounts/{id}/{kind:followers|following}", follow_list)
    add("POST", "/api/v1/accounts/{id}/{action:follow|unfollow}", follow_action)
    add("POST", "/api/v1/statuses", post_status)
    add("GET", "/api/v1/statuses/{id}", get_status)
    add("DELETE", "/api/v1/statuses/{id}", delete_status)
    add("PUT", "/api/v1/statuses/{id}", edit_status)
    add("GET", "/api/v1/statuses/{id}/context", context)
    add("POST", "/api/v1/statuses/{id}/{action:reblog|unreblog|favourite|unfavourite}", status_action)
    add("GET", "/api/v1/statuses/{id}/{kind:reblogged_by|favourited_by}", status_people)
    add("GET", "/api/v1/timelines/tag/{tag}", tag_timeline)
    add("GET", "/api/v1/tags/{name}", get_tag)
    add("POST", "/api/v1/tags/{name}/{action:follow|unfollow}", follow_tag)
    add("GET", "/api/v1/followed_tags", followed_tags)
    add("GET", "/api/v1/timelines/public", public_timeline)
    add("GET", "/api/v1/timelines/home", home_timeline)
    add("GET", "/api/v1/notifications", notifications)
    add("POST", "/api/v1/notifications/clear", clear_notifications)
    add("GET", "/api/v1/notifications/{id}", get_notification)
    add("POST", "/api/v1/notifications/{id}/dismiss", dismiss_notification)
    add("GET", "/api/v2/search", search_v2)
    for path in STREAM_PATHS:
        add("GET", path, sse_stream)
    add("GET", "/api/v1/streaming", ws_stream)
    if extra_routes is not None:
        extra_routes(app)
    return app


__all__ = ["Core", "build_app", "Event"]
