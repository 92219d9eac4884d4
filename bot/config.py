"""Configuration: one TOML file, validated into frozen dataclasses.

Every error names the file, the key and what was expected, so that a person editing the file by
hand can fix it without reading code. Secrets come from the environment (or `.env`); they may sit
in the file too, with a warning.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.texts import DEFAULT_TEXTS, TEXT_KEYS

DEFAULT_PATH = Path("config/numpolville.toml")
ENV_CONFIG = "NUMPOLVILLE_CONFIG"
ENV_MASTODON_TOKEN = "NUMPOLVILLE_MASTODON_TOKEN"
ENV_BLUESKY_PASSWORD = "NUMPOLVILLE_BLUESKY_PASSWORD"
LANGUAGES = ("fr", "en")
PROMPT_POLICIES = ("followers", "everyone", "never")
BOOST_POLICIES = ("classified", "detected")
ACK_POLICIES = ("favourite", "reply", "none")
BOT_POLICIES = ("classify", "ignore", "prompt")
REPLY_POLICIES = ("record", "curate", "ignore")
BLUESKY_SOURCES = ("jetstream", "firehose", "search")


class ConfigError(Exception):
    """A configuration problem a person can fix: says where and what is expected."""

    def __init__(self, source: str, key: str, expected: str) -> None:
        self.source, self.key, self.expected = source, key, expected
        super().__init__(f"{source}: `{key}`: {expected}")


@dataclass(frozen=True)
class Category:
    key: str
    number: int
    label: dict[str, str]
    aliases: tuple[str, ...] = ()

    def title(self, language: str) -> str:
        return self.label.get(language) or self.label.get("fr") or self.key


DEFAULT_CATEGORIES = (
    Category("projet", 1, {"fr": "Projet", "en": "Project"},
             ("projets", "project", "projects", "📌")),
    Category("contexte", 2, {"fr": "Contexte", "en": "Context"},
             ("contextes", "context", "contexts", "📊")),
    Category("initiative", 3, {"fr": "Initiative", "en": "Initiative"},
             ("initiatives", "rapport", "rapports", "report", "reports", "📣")),
    Category("prospective", 4, {"fr": "Prospective", "en": "Foresight"},
             ("prospectives", "foresight", "futur", "future", "🔭")),
)


@dataclass(frozen=True)
class Policy:
    prompt: str = "followers"
    boost: str = "classified"
    acknowledge: str = "favourite"
    prompt_timeout_hours: float = 48
    max_prompts_per_author_per_day: int = 5
    moderators: tuple[str, ...] = ()
    # Accounts flagged as bots: "classify" (recorded, classified when they tag a category, never
    # prompted), "ignore" (not recorded) or "prompt" (treated like people).
    bots: str = "classify"
    replies: str = "record"  # a tagged reply to someone else's post: see REPLY_POLICIES
    import_prompt: bool = False  # `numpolville import`: ask old posts' authors for a category
    import_boost: bool = False  # `numpolville import`: boost old posts (a wave in timelines)
    # A Bridgy Fed copy (bot/bridges.py) is boosted on its network too: the same share, reaching
    # that network's readers; a copy seen first waits this long for its original to be asked.
    boost_bridged: bool = True
    bridged_wait_seconds: float = 180.0


@dataclass(frozen=True)
class MastodonConfig:
    enabled: bool = False
    api_base_url: str = ""
    access_token: str = field(default="", repr=False)
    discovery_instances: tuple[str, ...] = ()
    poll_interval: float = 60.0
    streaming: bool = True
    set_bot_flag: bool = True
    follow_tag: bool = True  # follow the hashtag: its posts reach the home timeline and user stream


@dataclass(frozen=True)
class FeedsConfig:
    """Bluesky custom feeds served by the web server (`[bluesky.feeds]`): one for every classified
    post ("all") and one per category, published as `app.bsky.feed.generator` records."""

    enabled: bool = False
    service_did: str = ""  # "": did:web: + the host of [web] public_url
    plc_directory: str = "https://plc.directory"  # where a token issuer's did:plc is resolved
    names: dict[str, str] = field(default_factory=dict)  # feed key ("all", a category) -> name
    descriptions: dict[str, str] = field(default_factory=dict)
    avatar: str = ""  # an image file for every feed, optional


FEED_NAME_GRAPHEMES = 24  # app.bsky.feed.generator displayName
FEED_DESCRIPTION_GRAPHEMES = 300


@dataclass(frozen=True)
class BlueskyConfig:
    enabled: bool = False
    service: str = "https://bsky.social"
    handle: str = ""
    password: str = field(default="", repr=False)
    source: str = "jetstream"
    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    firehose_url: str = "wss://bsky.network/xrpc"
    poll_interval: float = 60.0
    set_bot_label: bool = True
    feeds: FeedsConfig = FeedsConfig()


@dataclass(frozen=True)
class DigestConfig:
    schedule: str = ""
    public_url: str = ""
    timezone: str = "Europe/Paris"
    max_entries: int = 30  # entries listed per category (every one is counted); 0: all


@dataclass(frozen=True)
class WebConfig:
    """The public site, feeds and moderation desk (`numpolville serve`)."""

    enabled: bool = False
    bind: str = "127.0.0.1:8080"
    public_url: str = ""  # absolute links in feeds and pages
    title: str = ""  # "" : the hashtag's veille, in the configured language
    trusted_proxies: tuple[str, ...] = ()  # X-Forwarded-* honoured only from these addresses


@dataclass(frozen=True)
class Config:
    hashtag: str = "numpolville"
    language: str = "fr"
    database: Path = Path("data/numpolville.db")
    mastodon: MastodonConfig = MastodonConfig()
    bluesky: BlueskyConfig = BlueskyConfig()
    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    policy: Policy = Policy()
    texts: dict[str, dict[str, str]] = field(default_factory=lambda: DEFAULT_TEXTS)
    digest: DigestConfig = DigestConfig()
    web: WebConfig = WebConfig()
    source: str = "(defaults)"
    warnings: tuple[str, ...] = ()

    def text(self, key: str, **values: Any) -> str:
        """A user-facing text in the configured language, with `{placeholders}` filled."""
        template = self.texts[self.language][key]
        return template.format_map(_Blank(hashtag=self.hashtag, **values))

    def category(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.key == key), None)

    def secrets(self) -> list[str]:
        """Every secret value, so logs can mask them."""
        return [s for s in (self.mastodon.access_token, self.bluesky.password) if s]


class _Blank(dict):
    """format_map helper: an unknown placeholder stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def resolve_path(path: str | Path | None) -> Path:
    """--config, else $NUMPOLVILLE_CONFIG, else config/numpolville.toml."""
    return Path(path or os.environ.get(ENV_CONFIG) or DEFAULT_PATH)


def load(path: str | Path | None = None, *, required: bool = False) -> Config:
    """Read, validate and complete the configuration. A missing default file means defaults.
    A `.env` other users can read is loaded, with a warning that says how to fix it."""
    load_dotenv()
    env_warning = env_file_problem()
    p = resolve_path(path)
    if not p.exists():
        if required or path or os.environ.get(ENV_CONFIG):
            raise ConfigError(str(p), "(file)", "the file does not exist; `numpolville init` writes one")
        config = _with_env_secrets(Config(), str(p))
    else:
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(str(p), "(syntax)", f"valid TOML ({e})") from None
        config = parse(raw, str(p))
    return replace(config, warnings=(env_warning, *config.warnings)) if env_warning else config


def parse(raw: dict[str, Any], source: str = "(inline)") -> Config:
    r = _Reader(raw, source)
    warnings: list[str] = []
    hashtag = r.string("hashtag", "numpolville").lstrip("#").strip()
    if not hashtag or not hashtag.replace("_", "").isalnum():
        raise ConfigError(source, "hashtag", "a hashtag made of letters, digits or _, without #")
    language = r.choice("language", "fr", LANGUAGES)
    database = Path(r.string("database", "data/numpolville.db"))

    m = r.section("mastodon")
    token = m.string("access_token", "")
    if token:
        warnings.append(f"{source}: mastodon.access_token is in the file; "
                        f"the environment variable {ENV_MASTODON_TOKEN} (or .env) is safer")
    mastodon = MastodonConfig(
        enabled=m.flag("enabled", False),
        api_base_url=m.string("api_base_url", "").rstrip("/"),
        access_token=token,
        discovery_instances=tuple(m.strings("discovery_instances", [])),
        poll_interval=m.number("poll_interval", 60.0),
        streaming=m.flag("streaming", True),
        set_bot_flag=m.flag("set_bot_flag", True),
        follow_tag=m.flag("follow_tag", True),
    )
    b = r.section("bluesky")
    password = b.string("app_password", "")
    if password:
        warnings.append(f"{source}: bluesky.app_password is in the file; "
                        f"the environment variable {ENV_BLUESKY_PASSWORD} (or .env) is safer")
    d = BlueskyConfig()
    bluesky = BlueskyConfig(
        enabled=b.flag("enabled", False),
        service=b.string("service", d.service).rstrip("/"),
        handle=b.string("handle", "").lstrip("@"),
        password=password,
        source=b.choice("source", "jetstream", BLUESKY_SOURCES),
        jetstream_url=b.string("jetstream_url", d.jetstream_url),
        firehose_url=b.string("firehose_url", d.firehose_url),
        poll_interval=b.number("poll_interval", 60.0),
        set_bot_label=b.flag("set_bot_label", d.set_bot_label),
    )
    pol = r.section("policy")
    policy = Policy(
        prompt=pol.choice("prompt", "followers", PROMPT_POLICIES),
        boost=pol.choice("boost", "classified", BOOST_POLICIES),
        acknowledge=pol.choice("acknowledge", "favourite", ACK_POLICIES),
        prompt_timeout_hours=pol.number("prompt_timeout_hours", 48),
        max_prompts_per_author_per_day=int(pol.number("max_prompts_per_author_per_day", 5)),
        moderators=tuple(h.lstrip("@").lower() for h in pol.strings("moderators", [])),
        bots=pol.choice("bots", "classify", BOT_POLICIES),
        replies=pol.choice("replies", "record", REPLY_POLICIES),
        import_prompt=pol.flag("import_prompt", False),
        import_boost=pol.flag("import_boost", False),
        boost_bridged=pol.flag("boost_bridged", True),
        bridged_wait_seconds=pol.number("bridged_wait_seconds", 180.0),
    )
    dg = r.section("digest")
    digest = DigestConfig(schedule=dg.string("schedule", ""), public_url=dg.string("public_url", ""),
                          timezone=dg.string("timezone", "Europe/Paris"),
                          max_entries=dg.raw("max_entries", DigestConfig.max_entries))
    _check_digest(digest, source)
    w = r.section("web")
    web = WebConfig(enabled=w.flag("enabled", False), bind=w.string("bind", WebConfig.bind),
                    public_url=w.string("public_url", "").rstrip("/"), title=w.string("title", ""),
                    trusted_proxies=tuple(w.strings("trusted_proxies", [])))
    _check_web(web, source)
    categories = _categories(raw, source)
    bluesky = replace(bluesky, feeds=_feeds(b.section("feeds"), web, categories, source))
    config = Config(hashtag=hashtag, language=language, database=database, mastodon=mastodon,
                    bluesky=bluesky, categories=categories, policy=policy,
                    texts=_texts(r.section("texts"), source), digest=digest, web=web, source=source,
                    warnings=tuple(warnings))
    return _with_env_secrets(config, source)


def _check_digest(digest: DigestConfig, source: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    cap = digest.max_entries
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise ConfigError(source, "digest.max_entries",
                          "a whole number of entries listed per category, such as 30, or 0 for all")

    try:
        ZoneInfo(digest.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(source, "digest.timezone", "an IANA time zone such as \"Europe/Paris\"") from None
    if digest.schedule:  # imported only when used: the digest package pulls in Jinja2
        from bot.digest.period import parse_schedule

        try:
            parse_schedule(digest.schedule)
        except ValueError:
            raise ConfigError(source, "digest.schedule",
                              'a weekday and a time such as "mon 09:00", or "" for none') from None


def _check_web(web: WebConfig, source: str) -> None:
    host, sep, port = web.bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(source, "web.bind", 'an address and a port such as "127.0.0.1:8080"')
    if web.public_url and not web.public_url.startswith(("https://", "http://")):
        raise ConfigError(source, "web.public_url", 'an absolute URL such as "https://veille.example.org"')


def did_web(public_url: str) -> str:
    """The did:web of a site's host (a port is percent-encoded: did:web:localhost%3A8080)."""
    from urllib.parse import urlsplit

    host = urlsplit(public_url).netloc
    return f"did:web:{host.replace(':', '%3A')}" if host else ""


def graphemes(text: str) -> int:
    """User-perceived characters, as Bluesky counts them (an emoji with modifiers is one)."""
    import regex

    return len(regex.findall(r"\X", text))


def _feeds(f: _Reader, web: WebConfig, categories: tuple[Category, ...], source: str) -> FeedsConfig:
    keys = ("all", *(c.key for c in categories))
    texts: dict[str, dict[str, str]] = {}
    for table, limit in (("names", FEED_NAME_GRAPHEMES), ("descriptions", FEED_DESCRIPTION_GRAPHEMES)):
        values = f.raw(table, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise ConfigError(source, f"bluesky.feeds.{table}", "a table of feed key = \"text\"")
        for key, value in values.items():
            if key not in keys:
                raise ConfigError(source, f"bluesky.feeds.{table}.{key}", f"a feed key, one of {keys}")
            if not value.strip() or graphemes(value) > limit:
                raise ConfigError(source, f"bluesky.feeds.{table}.{key}",
                                  f"a text of 1 to {limit} characters (Bluesky's limit)")
        texts[table] = dict(values)
    service_did = f.string("service_did", "") or did_web(web.public_url)
    feeds = FeedsConfig(enabled=f.flag("enabled", False), service_did=service_did,
                        plc_directory=f.string("plc_directory", FeedsConfig.plc_directory).rstrip("/"),
                        names=texts["names"], descriptions=texts["descriptions"],
                        avatar=f.string("avatar", ""))
    if feeds.enabled and not service_did.startswith(("did:web:", "did:plc:")):
        raise ConfigError(source, "bluesky.feeds.service_did",
                          "a did:web: or did:plc: DID, or [web] public_url set to derive did:web: from it")
    return feeds


def _categories(raw: dict[str, Any], source: str) -> tuple[Category, ...]:
    items = raw.get("categories")
    if items is None:
        return DEFAULT_CATEGORIES
    if not isinstance(items, list) or not items:
        raise ConfigError(source, "categories", "a non-empty array of [[categories]] tables")
    out: list[Category] = []
    for i, item in enumerate(items):
        c = _Reader(item, source, f"categories[{i}].")
        key = c.string("key", "").strip().lower()
        if not key.isidentifier():
            raise ConfigError(source, f"categories[{i}].key", "a single word such as \"projet\"")
        label = c.raw("label", {})
        if isinstance(label, str):
            label = {"fr": label, "en": label}
        if not isinstance(label, dict):
            raise ConfigError(source, f"categories[{i}].label", "a string or a table {fr=..., en=...}")
        number = int(c.number("number", i + 1))
        out.append(Category(key, number, {k: str(v) for k, v in label.items()},
                            tuple(str(a) for a in c.strings("aliases", []))))
    keys = [c.key for c in out]
    numbers = [c.number for c in out]
    if len(set(keys)) != len(keys) or len(set(numbers)) != len(numbers):
        raise ConfigError(source, "categories", "distinct keys and distinct numbers")
    if not all(1 <= n <= 9 for n in numbers):
        raise ConfigError(source, "categories.number", "numbers from 1 to 9 (one keycap each)")
    return tuple(out)


def _texts(section: _Reader, source: str) -> dict[str, dict[str, str]]:
    texts = {lang: dict(DEFAULT_TEXTS[lang]) for lang in LANGUAGES}
    for lang, overrides in section.data.items():
        if lang not in LANGUAGES or not isinstance(overrides, dict):
            raise ConfigError(source, f"texts.{lang}", f"a table named after a language: {LANGUAGES}")
        for key, value in overrides.items():
            if key not in TEXT_KEYS or not isinstance(value, str):
                raise ConfigError(source, f"texts.{lang}.{key}", f"a string, one of {TEXT_KEYS}")
            texts[lang][key] = value
    return texts


def _with_env_secrets(config: Config, source: str) -> Config:
    token = os.environ.get(ENV_MASTODON_TOKEN) or config.mastodon.access_token
    password = os.environ.get(ENV_BLUESKY_PASSWORD) or config.bluesky.password
    return replace(config, source=source,
                   mastodon=replace(config.mastodon, access_token=token),
                   bluesky=replace(config.bluesky, password=password))


def check_ready(config: Config) -> None:
    """Errors that only matter when the bot is about to run: credentials and URLs."""
    m, b = config.mastodon, config.bluesky
    if not (m.enabled or b.enabled):
        raise ConfigError(config.source, "mastodon.enabled / bluesky.enabled",
                          "at least one network enabled")
    if m.enabled and not m.api_base_url:
        raise ConfigError(config.source, "mastodon.api_base_url", "the server URL, e.g. https://piaille.fr")
    if m.enabled and not m.access_token:
        raise ConfigError(config.source, "mastodon (access token)",
                          f"a token in ${ENV_MASTODON_TOKEN} or .env; `numpolville init` gets one")
    if b.enabled and not b.handle:
        raise ConfigError(config.source, "bluesky.handle", "the bot's handle, e.g. numpolville.bsky.social")
    if b.enabled and not b.password:
        raise ConfigError(config.source, "bluesky (app password)",
                          f"an app password in ${ENV_BLUESKY_PASSWORD} or .env; `numpolville init` helps")


def env_file_problem(path: Path = Path(".env")) -> str:
    """What is wrong with the secrets file's permissions ("" when nothing): it holds the tokens,
    so no one but its owner may read it."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return ""
    if not mode & 0o077:
        return ""
    return (f"{path} holds secrets and other users can access it (mode {mode:04o}); "
            f"run: chmod 600 {path}")


def load_dotenv(path: Path = Path(".env")) -> None:
    """Load KEY=VALUE lines from `.env` without overriding the real environment."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


class _Reader:
    """Typed access to one TOML table, raising ConfigError with the full key name."""

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ConfigError(source, prefix.rstrip(".") or "(root)", "a table")
        self.data, self.source, self.prefix = data, source, prefix

    def _fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(self.source, self.prefix + key, expected)

    def raw(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def section(self, key: str) -> _Reader:
        return _Reader(self.data.get(key, {}), self.source, f"{self.prefix}{key}.")

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self._fail(key, "a positive number")
        return float(value)

    def strings(self, key: str, default: list[str]) -> list[str]:
        value = self.data.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "an array of strings")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self._fail(key, "one of " + ", ".join(f'"{c}"' for c in choices))
        return value
