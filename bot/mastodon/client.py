"""The Mastodon.py client as the bot uses it, and the one retry policy every call goes through.

Three layers keep HTTP trouble away from the logs and from the bot's life:
- the requests session retries a 429 after its `Retry-After` (a 429 means the server did nothing,
  so even a POST is safe to resend), quietly;
- Mastodon.py's "wait" rate-limit mode sleeps until `X-RateLimit-Reset` when a 429 gets through;
- `call` retries network errors and 5xx with backoff, and turns "this can never work" answers
  (404, 403, 410, 422) into `PermanentError` so the runtime stops retrying that effect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot import __version__
from bot.adapter import PermanentError

log = logging.getLogger("numpolville.mastodon")

USER_AGENT = f"numpolville-bot/{__version__} (+https://github.com/numpolville/numpolville-bot)"
REQUEST_TIMEOUT = 20.0
PERMANENT_STATUSES = (403, 404, 410, 422)
T = TypeVar("T")


def make_client(base_url: str, token: str | None = None) -> Mastodon:
    """A client for `base_url` (a bare domain means https); no token for anonymous reads."""
    if "://" not in base_url:
        base_url = f"https://{base_url}"
    session = requests.Session()
    retry = Retry(total=5, connect=0, read=0, other=0, status=5, status_forcelist=(429,),
                  allowed_methods=None, respect_retry_after_header=True, backoff_factor=1.0,
                  raise_on_status=False)
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=retry, pool_maxsize=16))
    return Mastodon(api_base_url=base_url.rstrip("/"), access_token=token or None,
                    user_agent=USER_AGENT, ratelimit_method="wait", request_timeout=REQUEST_TIMEOUT,
                    version_check_mode="none", session=session)


def status_code(error: BaseException) -> int | None:
    """The HTTP status of a Mastodon.py API error (its second argument), if any."""
    args: tuple[Any, ...] = getattr(error, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def is_transient(error: BaseException) -> bool:
    """Worth trying again later: the network, the server's health, or its rate limit."""
    return isinstance(error, (MastodonNetworkError, MastodonServerError, MastodonRatelimitError))


class Retrier:
    """Runs API calls with backoff on transient errors; stops early when `stop` is set."""

    def __init__(self, attempts: int = 4, base_delay: float = 0.5, max_delay: float = 30.0,
                 stop: threading.Event | None = None) -> None:
        self.attempts, self.base_delay, self.max_delay = attempts, base_delay, max_delay
        self.stop = stop or threading.Event()

    def __call__(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(*args, **kwargs)
            except MastodonNotFoundError as e:
                raise PermanentError(f"not found ({_name(fn)})") from e
            except MastodonAPIError as e:
                if status_code(e) in PERMANENT_STATUSES:
                    raise PermanentError(f"refused by the server: {status_code(e)} ({_name(fn)})") from e
                if not is_transient(e) or attempt == self.attempts:
                    raise
                self._pause(fn, e, attempt)
            except (MastodonNetworkError, MastodonRatelimitError) as e:
                if attempt == self.attempts:
                    raise
                self._pause(fn, e, attempt)
        raise AssertionError("unreachable")

    def _pause(self, fn: Callable[..., object], error: BaseException, attempt: int) -> None:
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        level = logging.INFO if isinstance(error, MastodonRatelimitError) else logging.WARNING
        log.log(level, "mastodon %s: %s; retrying in %.1f s", _name(fn), _describe(error), delay)
        if self.stop.wait(delay):
            raise error


def _name(fn: Callable[..., object]) -> str:
    return getattr(fn, "__name__", "call")


def _describe(error: BaseException) -> str:
    """A short, secret-free description (Mastodon.py errors carry no headers or tokens)."""
    code = status_code(error)
    return f"HTTP {code}" if code else type(error).__name__
