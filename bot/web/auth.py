"""Moderators' sign-in: argon2 password hashes (argon2-cffi), a signed session cookie
(Starlette's SessionMiddleware, itsdangerous), a CSRF token per session, and a limit of failed
sign-ins per name and per address.

The session cookie's signing key comes from $NUMPOLVILLE_WEB_SECRET, else from a file beside the
database (created once, mode 0600), so `run` and `serve` share sessions and a restart keeps them;
it never goes into the database, a log or a page.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from bot.store import Store, iso
from bot.web.site import site

ENV_SECRET = "NUMPOLVILLE_WEB_SECRET"
FAILURES_PER_MINUTE = 5
SESSION_SECONDS = 12 * 3600
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(ValueError):
    """A moderator command that cannot be done (empty name or password, unknown name)."""


def add_moderator(store: Store, name: str, password: str) -> None:
    """Add a moderator, or set a new password for one."""
    name = name.strip()
    if not name or any(c.isspace() for c in name) or len(name) > 64:
        raise AuthError("a moderator's name is one word of at most 64 characters")
    if len(password) < 8:
        raise AuthError("the password must have at least 8 characters")
    store.set_moderator(name, _hasher.hash(password), iso(store.clock()))


def check_password(store: Store, name: str, password: str) -> bool:
    stored = store.moderator_hash(name)
    try:
        _hasher.verify(stored or _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False
    if stored and _hasher.check_needs_rehash(stored):
        store.set_moderator(name, _hasher.hash(password), iso(store.clock()))
    return stored is not None


def session_secret(database: Path) -> str:
    """The cookie-signing key: the environment's, else the file beside the database."""
    if os.environ.get(ENV_SECRET):
        return os.environ[ENV_SECRET]
    path = Path(database).with_name(Path(database).name + ".web-secret")
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key


class RateLimit:
    """At most `limit` failures per `window` seconds for one key (a name, an address)."""

    def __init__(self, limit: int = FAILURES_PER_MINUTE, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def exceeded(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # a flood of names: forget the settled ones
                self._failures = {k: q for k, q in self._failures.items() if self._recent(k, now)}
            for k in keys:
                self._recent(k, now).append(now)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, submitted: object) -> None:
    """403 unless the form carries the session's token."""
    expected = request.session.get("csrf")
    if not (expected and isinstance(submitted, str)
            and hmac.compare_digest(expected.encode(), submitted.encode())):
        raise HTTPException(403)


def moderator(request: Request) -> str | None:
    """The signed-in moderator, if the session names one who still has an account."""
    name = request.session.get("moderator")
    if not isinstance(name, str):
        return None
    return name if site(request).store.moderator_hash(name) else None
