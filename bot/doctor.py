"""`numpolville doctor`: is everything in place for `numpolville run`?

Each check is a small function returning a `Check` (what, pass/warn/fail/n/a, the detail, and the
fix when it fails), so the CLI only prints and tests call the checks one by one. A check never
raises: an unexpected error becomes a failed line naming it, never a traceback.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from bot import config as cfg

MAX_SKEW = 60.0  # seconds; signatures and "since" windows start failing beyond this
MIN_HEADROOM = 0.10  # warn when less than this share of the rate-limit window is left
INIT = "run `numpolville init`"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "warn" (works, worth a look), "fail" or "n/a"
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def passed(name: str, detail: str) -> Check:
    return Check(name, "pass", detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def warned(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, "warn", detail, fix)


def guarded(name: str, fn: Callable[..., Check], *args: Any) -> Check:
    """Run one check; an unforeseen error is a failure with its type, not a traceback."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 — the doctor must finish and report
        return failed(name, f"unexpected {type(e).__name__}: {str(e)[:200]}",
                      "report it with this line (no secret is in it)")


def run_checks(config_path: str | Path | None = None) -> Iterator[Check]:
    """Every check, in an order where a failure explains the ones after it."""
    try:
        config = cfg.load(config_path, required=True)
    except cfg.ConfigError as e:
        yield failed("config", str(e), f"fix the file, or {INIT} to write one")
        return
    yield passed("config", f"{config.source} is valid")
    env_problem = cfg.env_file_problem()
    for warning in config.warnings:
        if warning != env_problem:  # failed below, not only warned
            yield warned("config", warning)
    yield secrets_file(Path(".env"))
    if not (config.mastodon.enabled or config.bluesky.enabled):
        yield failed("networks", "neither Mastodon nor Bluesky is enabled", INIT)
    yield guarded("database", database, config.database)
    if config.mastodon.enabled:
        yield from mastodon_checks(config.mastodon)
    if config.bluesky.enabled:
        yield from bluesky_checks(config.bluesky, config.database)
    if config.bluesky.feeds.enabled:
        yield guarded("bluesky feeds", bluesky_feeds, config)
    if config.web.public_url:
        yield guarded("site", site, config.web.public_url)


# ---- local -----------------------------------------------------------------------------------------

def secrets_file(path: Path) -> Check:
    """`.env` holds the tokens: only its owner may read it (every command warns, doctor fails)."""
    problem = cfg.env_file_problem(path)
    if problem:
        return failed("secrets file", problem, f"chmod 600 {path}")
    if not path.exists():
        return Check("secrets file", "n/a", f"no {path}: secrets come from the environment")
    return passed("secrets file", f"{path}: readable by its owner only")


def database(path: Path) -> Check:
    """The store opens (which applies migrations), is at the latest schema and takes a write."""
    from bot.store import SCHEMA, Store

    try:
        store = Store(path)
        try:
            version = store.schema_version()
            with store.transaction():  # a real (no-op) write: read-only files fail here
                store.db.conn.execute("UPDATE _migrations SET applied_at = applied_at WHERE version = ?",
                                      (version,))
        finally:
            store.close()
    except (OSError, sqlite3.Error) as e:
        return failed("database", f"{path}: {e}",
                      f"make {path.parent} writable by this user, or point `database` elsewhere")
    if version != len(SCHEMA):
        return failed("database", f"{path}: schema {version}, this version knows {len(SCHEMA)}",
                      "upgrade numpolville-bot (the database was written by a newer one)")
    return passed("database", f"{path}: writable, schema {version} (latest)")


def skew(name: str, date_header: str | None, local: float) -> Check:
    """Compare a server's HTTP `Date` with the local clock."""
    if not date_header:
        return warned(name, "the server sent no Date header; clock not checked")
    offset = local - parsedate_to_datetime(date_header).timestamp()
    if abs(offset) > MAX_SKEW:
        return failed(name, f"local clock is {offset:+.0f} s off the server's",
                      "enable time synchronisation (e.g. `timedatectl set-ntp true`)")
    return passed(name, f"{offset:+.0f} s from the server")


def clock(name: str, url: str) -> Check:
    import requests

    with requests.get(url, timeout=10, stream=True) as response:
        return skew(name, response.headers.get("Date"), time.time())


def headroom(name: str, remaining: int, limit: int) -> Check:
    if limit <= 0:
        return warned(name, "the server announced no rate limit")
    share = remaining / limit
    if share < MIN_HEADROOM:
        return warned(name, f"{remaining}/{limit} calls left in this window ({share:.0%})",
                      "another client shares this token, or the bot was busy: it slows down by itself")
    return passed(name, f"{remaining}/{limit} calls left in this window")


def site(public_url: str) -> Check:
    """`[web] public_url` answers: the site's /healthz is reached there (whatever it judges)."""
    import requests

    url = f"{public_url}/healthz"
    try:
        response = requests.get(url, timeout=10, allow_redirects=False)
    except requests.RequestException as e:
        return failed("site", f"{url} does not answer ({type(e).__name__})",
                      "start `numpolville serve` (or `run` with [web] enabled), and check that the "
                      "reverse proxy forwards public_url to [web] bind")
    if response.status_code not in (200, 503) or "healthy" not in response.text:
        return failed("site", f"{url} answers {response.status_code}, not the site's health check",
                      "point the reverse proxy at [web] bind, or fix [web] public_url")
    return passed("site", f"{public_url} answers")


# ---- Mastodon --------------------------------------------------------------------------------------

def mastodon_checks(m: cfg.MastodonConfig) -> Iterator[Check]:
    if not m.access_token:
        yield failed("mastodon token", "missing", f"{INIT} (it stores {cfg.ENV_MASTODON_TOKEN} in .env)")
        return
    from bot.mastodon.client import make_client

    client = make_client(m.api_base_url, m.access_token)
    account: dict[str, Any] = {}
    login = guarded("mastodon token", mastodon_login, client, m.api_base_url, account)
    yield login
    if not login.ok:
        return
    me = account["me"]
    yield guarded("mastodon bot flag", mastodon_bot_flag, me, m.set_bot_flag)
    yield guarded("mastodon followers", mastodon_followers, client, me["id"])
    server: dict[str, Any] = {}
    yield guarded("mastodon server", mastodon_server, client, m, server)
    if "server" in server:
        yield guarded("mastodon streaming", mastodon_streaming, server["server"], m)
    yield guarded("mastodon clock", clock, "mastodon clock", f"{m.api_base_url}/api/v1/instance")
    yield headroom("mastodon rate limit", client.ratelimit_remaining, client.ratelimit_limit)


def mastodon_login(client: Any, server: str, out: dict[str, Any]) -> Check:
    from mastodon.errors import MastodonError, MastodonNetworkError, MastodonUnauthorizedError

    name = "mastodon token"
    try:
        out["me"] = me = client.account_verify_credentials()
    except MastodonUnauthorizedError:
        return failed(name, f"{server} refuses the token (revoked, or for another server)", INIT)
    except MastodonNetworkError:
        return failed(name, f"cannot reach {server}",
                      "check `mastodon.api_base_url` and this machine's network")
    except MastodonError as e:
        return failed(name, f"{server} answered {type(e).__name__}", "try again later; check the server")
    return passed(name, f"accepted: @{me['acct']} on {server}")


def mastodon_bot_flag(me: dict[str, Any], set_bot_flag: bool) -> Check:
    name = "mastodon bot flag"
    if me.get("bot"):
        return passed(name, f"@{me['acct']} is marked as a bot")
    if set_bot_flag:
        return warned(name, f"@{me['acct']} is not marked as a bot yet",
                      "`numpolville run` sets it at start-up (set_bot_flag = true)")
    return failed(name, f"@{me['acct']} is not marked as a bot",
                  "tick “This is an automated account” in Preferences → Profile, "
                  "or set `mastodon.set_bot_flag = true`")


def mastodon_followers(client: Any, account_id: str) -> Check:
    from mastodon.errors import MastodonError

    try:
        client.account_followers(account_id, limit=1)
    except MastodonError as e:
        return failed("mastodon followers", f"not readable ({type(e).__name__})",
                      f"the token lacks read:accounts; {INIT} again")
    return passed("mastodon followers", "readable (prompts go to followers)")


def mastodon_server(client: Any, m: cfg.MastodonConfig, out: dict[str, Any]) -> Check:
    """What the server is and can do, as `run` reads it at connect."""
    from bot.mastodon.client import Retrier
    from bot.mastodon.server import probe

    out["server"] = info = probe(client, Retrier(attempts=1), m.api_base_url)
    detail = info.identity()  # following the tag is `run`'s to do
    if info.idempotency:
        return passed("mastodon server", detail)
    return warned("mastodon server", detail + "; no Idempotency-Key: a retried prompt is looked "
                  "for in the thread first (one more request)")


def mastodon_streaming(info: Any, m: cfg.MastodonConfig) -> Check:
    """Open the user stream the way `run` does (a WebSocket, the token in its protocol header)."""
    from bot.mastodon.stream import Streams

    name = "mastodon streaming"
    polling = f"every post is still read by polling every {m.poll_interval:g} s"
    if not m.streaming:
        return Check(name, "n/a", f"off in the config: {polling}")
    if not info.streaming_url:
        return warned(name, f"the server announces no streaming URL: {polling}")
    try:
        with Streams(info.streaming_url, m.access_token).open(stream="user"):
            pass
    except Exception as e:  # noqa: BLE001 - any layer: TCP, TLS, HTTP
        return warned(name, f"{info.streaming_url} cannot be opened ({type(e).__name__}: "
                      f"{str(e)[:120]}): {polling}", "nothing to do; slower but complete")
    return passed(name, f"opens at {info.streaming_url} ({polling} too)")


# ---- Bluesky ---------------------------------------------------------------------------------------

def bluesky_checks(b: cfg.BlueskyConfig, db: Path) -> Iterator[Check]:
    if not b.handle or not b.password:
        yield failed("bluesky login", "handle or app password missing",
                     f"{INIT} (it stores {cfg.ENV_BLUESKY_PASSWORD} in .env)")
        return
    session: dict[str, Any] = {}
    login = guarded("bluesky login", bluesky_login, b, db, session)
    yield login
    if not login.ok:
        return
    client, did = session["client"], session["did"]
    yield guarded("bluesky bot label", bluesky_bot_label, client, did, b.set_bot_label)
    yield guarded("bluesky followers", bluesky_followers, client, did)
    yield guarded("bluesky clock", clock, "bluesky clock", f"{b.service}/xrpc/_health")


def bluesky_login(b: cfg.BlueskyConfig, db: Path, out: dict[str, Any]) -> Check:
    """The bot's own login (its saved session first, like `run`, to spare createSession)."""
    from atproto_client.exceptions import AtProtocolError, NetworkError

    from bot.bluesky.session import open_client, session_path

    try:
        out["client"], out["did"] = open_client(b, session_path(db))
    except NetworkError:
        return failed("bluesky login", f"cannot reach {b.service}",
                      "check `bluesky.service` and this machine's network")
    except AtProtocolError as e:
        return failed("bluesky login", f"{b.service} refuses {b.handle} ({type(e).__name__})",
                      f"create an app password (bsky.app: Settings → Privacy and security → "
                      f"App passwords) and {INIT}")
    return passed("bluesky login", f"{b.handle} ({out['did']})")


def bluesky_bot_label(client: Any, did: str, set_bot_label: bool) -> Check:
    """The `bot` self-label is Bluesky's bot flag: the app shows the account as automated."""
    from atproto_client.exceptions import AtProtocolError

    from bot.bluesky.profile import BOT, read_profile, self_labels

    name = "bluesky bot label"
    try:
        profile, _ = read_profile(client, did)
    except AtProtocolError as e:  # the label is a courtesy: not worth failing the doctor over
        return warned(name, f"the profile could not be read ({type(e).__name__})", "try again later")
    if BOT in self_labels(profile):
        return passed(name, "the profile carries the `bot` self-label (shown as automated)")
    if set_bot_label:
        return warned(name, "the profile has no `bot` self-label yet",
                      "`numpolville run` adds it at start-up (set_bot_label = true)")
    return warned(name, "the profile has no `bot` self-label",
                  "set `bluesky.set_bot_label = true`: `numpolville run` then adds it at start-up")


def bluesky_followers(client: Any, did: str) -> Check:
    from atproto_client.exceptions import AtProtocolError

    try:
        client.app.bsky.graph.get_followers({"actor": did, "limit": 1})
    except AtProtocolError as e:
        return failed("bluesky followers", f"not readable ({type(e).__name__})",
                      "the service must reach an AppView (bsky.social does); check `bluesky.service`")
    return passed("bluesky followers", "readable (prompts go to followers)")


def bluesky_feeds(config: cfg.Config) -> Check:
    """The feed service as the AppView calls it: the service DID's document names a `#bsky_fg`
    endpoint, whose describeFeedGenerator answers for that DID, and a published feed's skeleton."""
    import httpx

    name, f = "bluesky feeds", config.bluesky.feeds
    did = f.service_did
    if did.startswith("did:web:"):
        host = did.removeprefix("did:web:").replace("%3A", ":")
        scheme = "http" if host.split(":")[0] == "localhost" else "https"  # as the AppView resolves it
        doc_url = f"{scheme}://{host}/.well-known/did.json"
    else:
        doc_url = f"{f.plc_directory}/{did}"
    fix_doc = (f"serve the site (`[web] public_url` = {config.web.public_url or '?'}) so that {doc_url} "
               "answers, or set `bluesky.feeds.service_did`")
    try:
        doc = httpx.get(doc_url, timeout=10, follow_redirects=False).raise_for_status().json()
        endpoint = next(s["serviceEndpoint"] for s in doc.get("service", []) if s.get("id") in
                        ("#bsky_fg", f"{did}#bsky_fg") and s.get("type") == "BskyFeedGenerator")
    except (httpx.HTTPError, ValueError, KeyError, StopIteration, AttributeError, TypeError) as e:
        return failed(name, f"the DID document of {did} ({doc_url}) names no feed service "
                      f"({type(e).__name__})", fix_doc)
    xrpc = f"{str(endpoint).rstrip('/')}/xrpc"
    try:
        described = httpx.get(f"{xrpc}/app.bsky.feed.describeFeedGenerator",
                              timeout=10).raise_for_status().json()
        uris = [feed["uri"] for feed in described.get("feeds", [])]
        if described.get("did") != did:
            return failed(name, f"{endpoint} answers for {described.get('did')!r}, not {did}",
                          "point the DID document's #bsky_fg service at this bot's site")
        if not uris:
            return warned(name, f"{endpoint} serves no published feed", "`numpolville feeds publish`")
        page = httpx.get(f"{xrpc}/app.bsky.feed.getFeedSkeleton", params={"feed": uris[0], "limit": 1},
                         timeout=10).raise_for_status().json()
        if not isinstance(page.get("feed"), list):
            raise ValueError("no feed list")
    except (httpx.HTTPError, ValueError, KeyError, AttributeError, TypeError) as e:
        return failed(name, f"{endpoint} does not answer the feed calls ({type(e).__name__})",
                      "start the site (`numpolville serve`) with `[bluesky.feeds] enabled = true`")
    return passed(name, f"{did} → {endpoint}: {len(uris)} feed(s) published")
