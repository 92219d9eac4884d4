"""The moderation desk: /login, /logout and /moderation/ (signed-in moderators only).

A decision is an event for the curation rules, sent through the site's `dispatch` exactly like a
moderator's answer on a network: the rules decide, the store writes the state and the intents
(boost, unboost) in one transaction, and an effect worker carries them out: the one of the
`run` process serving the site, or, when `serve` runs alone, the running bot's, which picks up
pending intents on its next tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import Receive, Scope, Send

from bot import model as m
from bot.digest.render import format_date
from bot.store_web import QUEUE_STATES
from bot.web.auth import RateLimit, check_csrf, check_password, csrf_token, moderator
from bot.web.site import PER_PAGE, Site, page_number, pages, site

MAX_FIELD = 2000
MAX_BODY = 64 * 1024
ACTIONS = ("classify", "withdraw", "restore", "block", "unblock")
VIEWS = {"": ("queue", QUEUE_STATES), "classified": ("classified", ("classified",)),
         "withdrawn": ("withdrawn", ("withdrawn",))}


def _safe_next(value: Any) -> str:
    """Where to go after signing in or deciding: a desk path, never another site."""
    if isinstance(value, str) and value.startswith("/moderation/") and "//" not in value \
            and "\\" not in value:
        return value
    return "/moderation/"


# ---- signing in and out --------------------------------------------------------------------------

async def login(request: Request) -> Response:
    s = site(request)
    if request.method == "GET":
        return _login_page(request, next_=_safe_next(request.query_params.get("next")))
    form = await _form(request)
    name, password = str(form.get("username", ""))[:100], str(form.get("password", ""))
    limit: RateLimit = request.app.state.login_limit
    keys = (f"name:{name.casefold()}", f"addr:{request.client.host if request.client else ''}")
    if limit.exceeded(*keys):
        return _login_page(request, error=s.t["too_many"], status=429, username=name,
                           next_=_safe_next(form.get("next")))
    if not name or not check_password(s.store, name, password):
        limit.failed(*keys)
        return _login_page(request, error=s.t["login_failed"], status=401, username=name,
                           next_=_safe_next(form.get("next")))
    request.session.clear()  # a new session: a token planted before sign-in is worth nothing
    request.session["moderator"] = name
    csrf_token(request)
    return RedirectResponse(_safe_next(form.get("next")), 303)


def _login_page(request: Request, *, error: str = "", status: int = 200, username: str = "",
                next_: str = "/moderation/") -> Response:
    s = site(request)
    return s.page("login", s.context(request, "login", csrf=csrf_token(request), error=error,
                                     username=username, next=next_), status)


async def logout(request: Request) -> Response:
    if request.method == "POST":
        await _form(request)
        request.session.clear()
    return RedirectResponse("/login" if request.method == "GET" else "/", 303)


async def _form(request: Request) -> FormData:
    """The POSTed form, refused with 403 without the session's CSRF token (and with 413 when it
    is larger than any of the desk's forms)."""
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise HTTPException(413)
    form = await request.form(max_files=0, max_fields=20)
    check_csrf(request, form.get("csrf"))
    return form


# ---- the desk ------------------------------------------------------------------------------------

def queue(request: Request) -> Response:
    """A list of items in some states (the queue, the classified, the withdrawn) to act on."""
    s = site(request)
    view = request.url.path.removeprefix("/moderation/").strip("/")
    name, states = VIEWS[view]
    page = page_number(request)
    rows = s.store.desk_items(states, PER_PAGE + 1, (page - 1) * PER_PAGE)
    items = [{**r, "entry": e, "post_url": e.sharers[0].url}
             for r, e in zip(rows[:PER_PAGE], s.entries(rows[:PER_PAGE]), strict=True)]
    intro = s.t["queue_intro"] if view == "" else ""
    return _desk_page(request, view, s.t[name], items=items, intro=intro,
                      **pages(request, page, len(rows) > PER_PAGE))


def authors(request: Request) -> Response:
    s = site(request)
    return _desk_page(request, "authors", s.t["blocked"], authors=s.store.blocked_authors())


def history(request: Request) -> Response:
    s = site(request)
    page = page_number(request)
    rows = s.store.decisions(PER_PAGE + 1, (page - 1) * PER_PAGE)
    for r in rows:  # when, as people read it, in the digest's time zone
        t = datetime.fromisoformat(r["at"]).astimezone(s.tz)
        r["at"] = f"{format_date(t, s.lang)} {t:%H:%M}"
    return _desk_page(request, "history", s.t["history"], decisions=rows[:PER_PAGE],
                      **pages(request, page, len(rows) > PER_PAGE))


def _desk_page(request: Request, view: str, heading: str, **values: Any) -> Response:
    s = site(request)
    tabs = [("", s.t["queue"]), ("classified", s.t["classified"]), ("withdrawn", s.t["withdrawn"]),
            ("authors", s.t["blocked"]), ("history", s.t["history"])]
    ctx = s.context(request, "desk", view=view, heading=heading, tabs=tabs, csrf=csrf_token(request),
                    moderator=request.scope["moderator"], back=request.url.path,
                    flash=request.session.pop("flash", ""), **values)
    ctx.setdefault("intro", "")
    return s.page("desk", ctx)


async def decide(request: Request) -> Response:
    """POST /moderation/ACTION: one decision, sent to the rules as an event."""
    s = site(request)
    form = await _form(request)
    field = {k: str(form.get(k, ""))[:MAX_FIELD] for k in ("network", "uri", "author_id", "category")}
    network, by = field["network"], request.scope["moderator"]
    if network not in ("mastodon", "bluesky"):
        return Response("unknown network", 400)
    action = request.path_params["action"]
    if action not in ACTIONS:
        return Response("unknown action", 404)
    event: m.Event
    if action in ("block", "unblock"):
        handle = s.store.author_handle(network, field["author_id"])
        if handle is None:
            return Response("unknown author", 404)
        event = m.ModeratorBlock(network, field["author_id"], handle, by,  # type: ignore[arg-type]
                                 action == "block")
    else:
        if s.store.item(network, field["uri"]) is None:
            return Response("unknown item", 404)
        if action == "classify":
            if s.config.category(field["category"]) is None:
                return Response("unknown category", 400)
            event = m.ModeratorDecision(network, field["uri"], field["category"], by)  # type: ignore[arg-type]
        elif action == "withdraw":
            event = m.ModeratorWithdrawal(network, field["uri"], by)  # type: ignore[arg-type]
        else:
            event = m.ModeratorRestore(network, field["uri"], by)  # type: ignore[arg-type]
    s.dispatch(event)
    if not _applied(s, event):  # the rules declined (the reason is in the event log)
        request.session["flash"] = s.t["not_applied"]
    return RedirectResponse(_safe_next(form.get("back")), 303)


def _applied(s: Site, event: m.Event) -> bool:
    """Whether the store now shows what the moderator asked for."""
    if isinstance(event, m.ModeratorBlock):
        return s.store.author_state(event.network, event.author_id).blocked == event.blocked
    item = s.store.item(event.network, event.uri)  # type: ignore[union-attr]
    if item is None:
        return False
    if isinstance(event, m.ModeratorDecision):
        return item.state == "classified" and item.category == event.category
    return (item.state == "withdrawn") == isinstance(event, m.ModeratorWithdrawal)


class SignedIn:
    """Every /moderation/ path, whatever it is: a redirect to /login without a signed-in
    moderator (who is then in `scope["moderator"]`)."""

    def __init__(self, app: Router) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            name = moderator(request)
            if name is None:
                target = "/login?" + urlencode({"next": request.url.path})
                await RedirectResponse(target, 303)(scope, receive, send)
                return
            scope["moderator"] = name
        await self.app(scope, receive, send)


ROUTES = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["GET", "POST"]),
    Mount("/moderation", app=SignedIn(Router([
        Route("/", queue),
        Route("/classified", queue),
        Route("/withdrawn", queue),
        Route("/authors", authors),
        Route("/history", history),
        Route("/{action:str}", decide, methods=["POST"]),
    ]))),
]
