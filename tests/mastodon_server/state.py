"""In-memory world of the fake Mastodon server.

Why: tests need a server whose state they can inspect and drive directly,
without SQL or fixtures on disk. All mutation goes through `World` methods
under one lock, and every change is announced to listeners (the streaming
hub, federation links) so the HTTP API and the Python control API share one
code path.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from .flavours import MASTODON, Flavour, IdMaker

IDEMPOTENCY_TTL = 3600.0  # seconds Mastodon keeps an Idempotency-Key (PostStatusService)
MENTION_RE = re.compile(r"(?<![\w/])@([A-Za-z0-9_]+)(?:@([A-Za-z0-9_.\-:]+[A-Za-z0-9]))?")
TAG_RE = re.compile(r"(?<![\w/&#])#([^\W_][\w]*)", re.UNICODE)
URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)]")


class ApiError(Exception):
    """An error that the API answers as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Account:
    id: str
    username: str
    domain: Optional[str]  # None for local accounts, like Mastodon
    note: str = ""
    display_name: str = ""
    bot: bool = False
    locked: bool = False
    created_at: datetime = field(default_factory=now_utc)
    url: str = ""
    uri: str = ""
    last_status_at: Optional[datetime] = None
    reblog_policy: str = "public"  # GoToSocial's can_reblog: "public", "approval" or "nobody"

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


@dataclass
class Status:
    id: str
    account_id: str
    text: str
    content: str
    visibility: str
    created_at: datetime
    uri: str
    url: Optional[str]
    spoiler_text: str = ""
    sensitive: bool = False
    language: Optional[str] = "en"
    in_reply_to_id: Optional[str] = None
    in_reply_to_account_id: Optional[str] = None
    reblog_of_id: Optional[str] = None
    mention_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    card_url: Optional[str] = None
    application: Optional[dict[str, Any]] = None
    edited_at: Optional[datetime] = None
    local: bool = True


@dataclass
class Notification:
    id: str
    type: str
    account_id: str  # the recipient
    from_account_id: str
    status_id: Optional[str]
    created_at: datetime = field(default_factory=now_utc)


@dataclass
class App:
    id: str
    name: str
    website: Optional[str]
    redirect_uris: list[str]
    scopes: list[str]
    client_id: str
    client_secret: str


@dataclass
class Token:
    token: str
    account_id: Optional[str]
    app_id: Optional[str]
    scopes: list[str]
    created_at: float = field(default_factory=time.time)


@dataclass
class Event:
    """Something streams care about: update, delete, notification, status.update."""

    name: str
    status: Optional[Status] = None
    notification: Optional[Notification] = None
    deleted_id: Optional[str] = None


class World:
    """All server state; thread-safe through a re-entrant lock."""

    def __init__(self, domain: str, scheme: str = "https", idempotency_ttl: float = IDEMPOTENCY_TTL,
                 flavour: Flavour = MASTODON) -> None:
        self.lock = threading.RLock()
        self.flavour = flavour
        self.ids = IdMaker(flavour.ids)
        self.followed_tags: set[tuple[str, str]] = set()  # (account id, tag)
        self.pending_reblogs: set[tuple[str, str]] = set()  # (account, status): awaiting approval
        self.domain = domain
        self.scheme = scheme
        self.idempotency_ttl = idempotency_ttl  # a test may set 0: every key already expired
        self.accounts: dict[str, Account] = {}
        self.statuses: dict[str, Status] = {}
        self.deleted: dict[str, Status] = {}
        self.follows: dict[tuple[str, str], str] = {}  # (follower, followed) -> follow id (for paging)
        self.favourites: dict[tuple[str, str], str] = {}  # (account, status) -> time id
        self.reblogs: dict[tuple[str, str], str] = {}  # (account, original) -> reblog status id
        self.notifications: dict[str, Notification] = {}
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, Token] = {}
        self.auth_codes: dict[str, tuple[str, str, list[str]]] = {}  # code -> (client_id, account, scopes)
        self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        self.listeners: list[Callable[[Event], None]] = []
        self._small_id = 0

    # ---- ids -------------------------------------------------------------
    def next_id(self) -> str:
        """A strictly increasing id in the flavour's format (Mastodon: milliseconds << 16)."""
        return self.ids.next()

    def next_small_id(self) -> str:
        """Mastodon numbers notifications and apps from 1; the others use their usual ids."""
        if self.flavour.ids != "snowflake":
            return self.ids.next()
        with self.lock:
            self._small_id += 1
            return str(self._small_id)

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.domain}"

    def emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must never break the API
                pass

    # ---- accounts & auth --------------------------------------------------
    def create_account(
        self,
        username: str,
        note: str = "",
        bot: bool = False,
        display_name: str = "",
        domain: Optional[str] = None,
        url: str = "",
        uri: str = "",
    ) -> Account:
        with self.lock:
            if self.find_account(username if domain is None else f"{username}@{domain}"):
                raise ApiError(422, "Validation failed: Username has already been taken")
            aid = self.next_id()
            acc = Account(
                id=aid,
                username=username,
                domain=domain,
                note=note,
                bot=bot,
                display_name=display_name or username,
                url=url or f"{self.base}/@{username}",
                uri=uri or f"{self.base}/users/{username}",
            )
            self.accounts[aid] = acc
            return acc

    def find_account(self, acct: str) -> Optional[Account]:
        acct = acct.lstrip("@")
        if acct.endswith("@" + self.domain):
            acct = acct[: -len(self.domain) - 1]
        with self.lock:
            for acc in self.accounts.values():
                if acc.acct.lower() == acct.lower():
                    return acc
        return None

    def account(self, account_id: str) -> Account:
        acc = self.accounts.get(account_id)
        if acc is None:
            raise ApiError(404, "Record not found")
        return acc

    def issue_token(
        self, account_id: Optional[str], app_id: Optional[str] = None, scopes: Optional[list[str]] = None
    ) -> Token:
        with self.lock:
            tok = Token(
                secrets.token_urlsafe(32), account_id, app_id, scopes or ["read", "write", "follow", "push"]
            )
            self.tokens[tok.token] = tok
            return tok

    def create_app(
        self, name: str, redirect_uris: list[str], scopes: list[str], website: Optional[str]
    ) -> App:
        with self.lock:
            app = App(
                self.next_small_id(),
                name,
                website,
                redirect_uris,
                scopes,
                secrets.token_urlsafe(32),
                secrets.token_urlsafe(32),
            )
            self.apps[app.client_id] = app
            return app

    # ---- follows -------------------------------------------------------------
    def follow(self, follower_id: str, followed_id: str) -> None:
        with self.lock:
            self.account(follower_id), self.account(followed_id)
            if (follower_id, followed_id) in self.follows:
                return
            self.follows[(follower_id, followed_id)] = self.next_id()
            n = self._notify("follow", followed_id, follower_id, None)
        if n:
            self.emit(Event("notification", notification=n))

    def unfollow(self, follower_id: str, followed_id: str) -> None:
        with self.lock:
            self.follows.pop((follower_id, followed_id), None)

    def followers_of(self, account_id: str) -> list[str]:
        with self.lock:
            return [a for (a, b) in self.follows if b == account_id]

    def following_of(self, account_id: str) -> list[str]:
        with self.lock:
            return [b for (a, b) in self.follows if a == account_id]

    # ---- statuses --------------------------------------------------------------
    def status(self, status_id: str) -> Status:
        st = self.statuses.get(status_id)
        if st is None:
            raise ApiError(404, "Record not found")
        return st

    def post(
        self,
        account_id: str,
        text: str,
        visibility: str = "public",
        in_reply_to_id: Optional[str] = None,
        spoiler_text: str = "",
        sensitive: bool = False,
        language: Optional[str] = "en",
        idempotency_key: Optional[str] = None,
        max_characters: Optional[int] = None,
        application: Optional[dict[str, Any]] = None,
        created_at: Optional[datetime] = None,
        uri: Optional[str] = None,
        url: Optional[str] = None,
    ) -> Status:
        """Create a status exactly as `POST /api/v1/statuses` does (notifications + stream events).
        `created_at` (the control API only) stands for a post that reaches the server late, as a
        federated one can: Mastodon keeps the origin's time. `uri` and `url` (the control API
        only) are a federated status's own, given by its origin (a remote account's post)."""
        from .render_text import render_content  # local import keeps modules acyclic

        if visibility not in ("public", "unlisted", "private", "direct"):
            raise ApiError(422, "Validation failed: Visibility is not included in the list")
        with self.lock:
            acc = self.account(account_id)
            if idempotency_key and self.flavour.idempotency:
                self._expire_idempotency()
                hit = self.idempotency.get((account_id, idempotency_key))
                if hit and hit[0] in self.statuses:
                    return self.statuses[hit[0]]
            if not text.strip():
                raise ApiError(422, "Validation failed: Text can't be blank")
            if max_characters is not None and len(text) + len(spoiler_text) > max_characters:
                raise ApiError(422, f"Validation failed: Text character limit of {max_characters} exceeded")
            parent = None
            if in_reply_to_id is not None:
                parent = self.statuses.get(str(in_reply_to_id))
                if parent is None:
                    raise ApiError(404, "Record not found")
            mentions = self._resolve_mentions(text)
            if parent is not None and parent.account_id != account_id and parent.account_id not in mentions:
                mentions.insert(0, parent.account_id)  # Mastodon auto-mentions the replied-to author
            content, tags, first_url = render_content(text, self, mentions)
            sid = self.next_id()
            st = Status(
                id=sid,
                account_id=account_id,
                text=text,
                content=content,
                visibility=visibility,
                created_at=created_at or now_utc(),
                uri=uri or f"{self.base}/users/{acc.username}/statuses/{sid}",
                url=url if uri else f"{self.base}/@{acc.username}/{sid}",
                spoiler_text=spoiler_text,
                sensitive=sensitive or bool(spoiler_text),
                language=language,
                local=uri is None,
                in_reply_to_id=parent.id if parent else None,
                in_reply_to_account_id=parent.account_id if parent else None,
                mention_ids=mentions,
                tags=tags,
                card_url=first_url,
                application=application,
            )
            self.statuses[sid] = st
            acc.last_status_at = st.created_at
            if idempotency_key:
                self.idempotency[(account_id, idempotency_key)] = (sid, time.time())
            notes = [n for n in (self._notify("mention", m, account_id, sid) for m in mentions) if n]
        self.emit(Event("update", status=st))
        for n in notes:
            self.emit(Event("notification", notification=n))
        return st

    def import_remote(self, origin: Status, origin_world: World) -> Status:
        """Make a local copy of a status from another server (new id, same uri/url)."""
        with self.lock:
            for st in self.statuses.values():
                if st.uri == origin.uri:
                    return st
            o_acc = origin_world.accounts[origin.account_id]
            acc = self.remote_account(o_acc, origin_world)
            sid = self.next_id()
            st = Status(
                id=sid,
                account_id=acc.id,
                text=origin.text,
                content=origin.content,
                visibility=origin.visibility,
                created_at=origin.created_at,
                uri=origin.uri,
                url=origin.url,
                spoiler_text=origin.spoiler_text,
                sensitive=origin.sensitive,
                language=origin.language,
                tags=list(origin.tags),
                card_url=origin.card_url,
                local=False,
                edited_at=origin.edited_at,
            )
            self.statuses[sid] = st
        self.emit(Event("update", status=st))
        return st

    def remote_account(self, o_acc: Account, origin_world: World) -> Account:
        with self.lock:
            domain = o_acc.domain or origin_world.domain
            existing = self.find_account(f"{o_acc.username}@{domain}")
            if existing:
                return existing
            return self.create_account(
                o_acc.username,
                note=o_acc.note,
                bot=o_acc.bot,
                display_name=o_acc.display_name,
                domain=domain,
                url=o_acc.url,
                uri=o_acc.uri,
            )

    def edit(self, account_id: str, status_id: str, text: str, spoiler_text: Optional[str] = None) -> Status:
        from .render_text import render_content

        with self.lock:
            st = self.status(status_id)
            if st.account_id != account_id:
                raise ApiError(404, "Record not found")
            mentions = self._resolve_mentions(text)
            for m in st.mention_ids:
                if m not in mentions and st.in_reply_to_account_id == m:
                    mentions.insert(0, m)
            st.text = text
            st.content, st.tags, st.card_url = render_content(text, self, mentions)
            st.mention_ids = mentions
            if spoiler_text is not None:
                st.spoiler_text = spoiler_text
            st.edited_at = now_utc()
        self.updated(st)
        return st

    def updated(self, st: Status) -> None:
        """An edit is streamed (`status.update`) and, where the flavour does so, notified to the
        local accounts that boosted the status (`update`: Mastodon's FanOutOnWriteService,
        Pleroma's and Akkoma's Notification for an Update; GoToSocial has no such notification)."""
        notes: list[Notification] = []
        with self.lock:
            if self.flavour.update_notifications:
                boosters = sorted({a for (a, sid) in self.reblogs if sid == st.id})
                notes = [n for n in (self._notify("update", a, st.account_id, st.id) for a in boosters) if n]
        self.emit(Event("status.update", status=st))
        for n in notes:
            self.emit(Event("notification", notification=n))

    def delete(self, account_id: Optional[str], status_id: str) -> Status:
        with self.lock:
            st = self.status(status_id)
            if account_id is not None and st.account_id != account_id:
                raise ApiError(404, "Record not found")
            del self.statuses[status_id]
            self.deleted[status_id] = st
            for n_id in [k for k, n in self.notifications.items() if n.status_id == status_id]:
                del self.notifications[n_id]
            if st.reblog_of_id:
                self.reblogs.pop((st.account_id, st.reblog_of_id), None)
            for key in [k for k, v in self.reblogs.items() if k[1] == status_id]:
                rid = self.reblogs.pop(key)
                self.statuses.pop(rid, None)
        self.emit(Event("delete", deleted_id=status_id, status=st))
        return st

    def reblog(self, account_id: str, status_id: str) -> Status:
        with self.lock:
            orig = self.status(status_id)
            if orig.reblog_of_id:
                orig = self.status(orig.reblog_of_id)
            if orig.visibility not in ("public", "unlisted"):
                raise ApiError(422, "Validation failed: Reblog of status is not allowed")
            key = (account_id, orig.id)
            if key in self.reblogs and self.reblogs[key] in self.statuses:
                return self.statuses[self.reblogs[key]]
            author = self.accounts[orig.account_id]
            policy = author.reblog_policy if self.flavour.interaction_policy else "public"
            if policy == "nobody" and account_id != orig.account_id:
                raise ApiError(403, "Forbidden: you do not have permission to boost this status")
            acc = self.account(account_id)
            rid = self.next_id()
            st = Status(
                id=rid,
                account_id=account_id,
                text="",
                content="",
                visibility="public",
                created_at=now_utc(),
                uri=f"{self.base}/users/{acc.username}/statuses/{rid}/activity",
                url=f"{self.base}/users/{acc.username}/statuses/{rid}/activity",
                reblog_of_id=orig.id,
                language=None,
            )
            self.statuses[rid] = st
            self.reblogs[key] = rid
            if policy == "approval" and account_id != orig.account_id:
                self.pending_reblogs.add(key)  # stored, shown to no one until the author accepts
                return st
            n = self._notify("reblog", orig.account_id, account_id, orig.id)
        self.emit(Event("update", status=st))
        if n:
            self.emit(Event("notification", notification=n))
        return st

    def tagged_for(self, st: Status) -> set[str]:
        """Accounts that follow one of the status's tags (it reaches their home timeline)."""
        if st.visibility != "public" or st.reblog_of_id is not None:
            return set()
        return {a for a, t in self.followed_tags if t in st.tags}

    def replays(self, account_id: str, key: str) -> bool:
        """Would posting with this Idempotency-Key return the status an earlier call made?"""
        with self.lock:
            self._expire_idempotency()
            hit = self.idempotency.get((account_id, key))
            return bool(hit and hit[0] in self.statuses)

    def tag_used(self, tag: str) -> bool:
        return any(tag in s.tags for s in (*self.statuses.values(), *self.deleted.values()))

    def unreblog(self, account_id: str, status_id: str) -> Status:
        with self.lock:
            orig = self.status(status_id)
            rid = self.reblogs.get((account_id, orig.id))
        if rid and rid in self.statuses:
            self.delete(account_id, rid)
        return orig

    def favourite(self, account_id: str, status_id: str) -> Status:
        with self.lock:
            st = self.status(status_id)
            if (account_id, st.id) in self.favourites:
                return st
            self.favourites[(account_id, st.id)] = self.next_id()
            n = self._notify("favourite", st.account_id, account_id, st.id)
        if n:
            self.emit(Event("notification", notification=n))
        return st

    def unfavourite(self, account_id: str, status_id: str) -> Status:
        with self.lock:
            st = self.status(status_id)
            self.favourites.pop((account_id, st.id), None)
            return st

    # ---- helpers --------------------------------------------------------------------
    def _resolve_mentions(self, text: str) -> list[str]:
        out: list[str] = []
        for m in MENTION_RE.finditer(text):
            acct = m.group(1) + (("@" + m.group(2)) if m.group(2) else "")
            acc = self.find_account(acct)
            if acc and acc.id not in out:
                out.append(acc.id)
        return out

    def _notify(
        self, kind: str, recipient: str, sender: str, status_id: Optional[str]
    ) -> Optional[Notification]:
        if recipient == sender:
            return None
        rec = self.accounts.get(recipient)
        if rec is None or rec.domain is not None:
            return None
        n = Notification(self.next_small_id(), kind, recipient, sender, status_id)
        self.notifications[n.id] = n
        return n

    def _expire_idempotency(self) -> None:
        cutoff = time.time() - self.idempotency_ttl
        for k in [k for k, v in self.idempotency.items() if v[1] < cutoff]:
            del self.idempotency[k]

    def replies_count(self, status_id: str) -> int:
        return sum(1 for s in self.statuses.values() if s.in_reply_to_id == status_id)

    def reblogs_count(self, status_id: str) -> int:
        return sum(1 for (a, s) in self.reblogs if s == status_id)

    def favourites_count(self, status_id: str) -> int:
        return sum(1 for (a, s) in self.favourites if s == status_id)

    def statuses_count(self, account_id: str) -> int:
        return sum(1 for s in self.statuses.values() if s.account_id == account_id)
