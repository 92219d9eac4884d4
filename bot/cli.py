"""The `numpolville` command. A thin shell: each command loads the config, opens the store and
calls one library function. Network SDKs are imported only by the commands that use them, so
`numpolville --help` stays fast.

Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

if TYPE_CHECKING:
    from bot.config import Config
    from bot.store import Store

app = typer.Typer(
    help="Curates a hashtag across Mastodon and Bluesky: asks posters for a category, boosts, "
         "logs to SQLite and publishes the weekly digest.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
feeds_app = typer.Typer(help="Bluesky custom feeds: one per category and one for all, served by the "
                             "web site ([bluesky.feeds]).", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
moderator_app = typer.Typer(help="The moderation desk's accounts (numpolville serve).",
                            no_args_is_help=True)
app.add_typer(moderator_app, name="moderator")

ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", "-c", help="Config file [default: $NUMPOLVILLE_CONFIG or config/numpolville.toml]",
    show_default=False)]
T = TypeVar("T")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _fail(message: str, code: int) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]Error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _guarded(fn: Callable[[], T]) -> T:
    """Run a command body, turning known errors into a clear line and the documented exit code."""
    from bot.config import ConfigError

    try:
        return fn()
    except typer.Exit:
        raise
    except ConfigError as e:
        raise _fail(str(e), 2) from None
    except (OSError, RuntimeError) as e:
        raise _fail(str(e), 1) from None


def _load(config: Path | None, *, required: bool = False) -> Config:
    """The configuration; with `required` (the long-running commands), a missing file is an
    error that points to `numpolville init` rather than the defaults."""
    from bot import config as cfg

    path = cfg.resolve_path(config)
    if required and not path.exists():
        raise _fail(f"no configuration file found at {path}. `numpolville init` writes one "
                    "(or give --config PATH, or set $NUMPOLVILLE_CONFIG).", 2)
    loaded = cfg.load(config)
    for warning in loaded.warnings:
        _console(stderr=True).print(f"[yellow]Warning:[/] {warning}", highlight=False)
    return loaded


def _store(config: Config) -> Store:
    from bot.store import Store

    return Store(config.database)


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: expected a date like 2026-11-23 or 2026-11-23T09:00, got {value!r}",
                    2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@app.command()
def run(config: ConfigOpt = None,
        log_format: Annotated[str, typer.Option(help="rich or json")] = "rich",
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also log ignored posts.")] = False,
        ) -> None:
    """Run the bot: listen, prompt, read answers, boost, until SIGTERM or Ctrl-C."""
    import logging

    from bot import config as cfg
    from bot import logs

    def body() -> None:
        loaded = _load(config, required=True)
        cfg.check_ready(loaded)
        logs.setup(log_format, logging.DEBUG if verbose else logging.INFO, loaded.secrets())
        from bot.runtime import Runtime, build_adapters

        store = _store(loaded)
        runtime = Runtime(loaded, store, build_adapters(loaded, store))
        web, web_store = None, None
        if loaded.web.enabled:  # the site in a thread; the desk's decisions go to this runtime
            from bot.web.app import create_app
            from bot.web.server import Background

            web_store = _store(loaded)  # its own connection: pages never wait for the bot
            web = Background(loaded, create_app(loaded, web_store, dispatch=runtime.emit)).start()
        try:
            runtime.run_forever()
        finally:
            if web and web_store:
                web.stop()
                web_store.close()
            store.close()  # the WAL is folded into the database and removed

    _guarded(body)


@app.command()
def serve(config: ConfigOpt = None,
          log_format: Annotated[str, typer.Option(help="rich or json")] = "rich",
          ) -> None:
    """Serve the site, its feeds and the moderation desk alone (`[web] bind`), until SIGTERM or
    Ctrl-C. The desk's decisions are carried out by the running bot (`numpolville run`)."""
    import logging

    from bot import logs

    def body() -> None:
        loaded = _load(config, required=True)
        logs.setup(log_format, logging.INFO, loaded.secrets())
        from bot.web.server import serve as serve_web

        serve_web(loaded, _store(loaded))

    _guarded(body)


@moderator_app.command("add")
def moderator_add(name: Annotated[str, typer.Argument(help="The moderator's sign-in name")],
                  config: ConfigOpt = None,
                  password_stdin: Annotated[bool, typer.Option(
                      "--password-stdin", help="Read the password from standard input")] = False,
                  ) -> None:
    """Add a moderator (or set a new password): asked for twice, or read with --password-stdin."""
    from bot.web.auth import AuthError, add_moderator

    def body() -> None:
        store = _store(_load(config))
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            add_moderator(store, name, password)
        except AuthError as e:
            raise _fail(str(e), 2) from None
        _console().print(f"Moderator {name} can sign in at /login.", highlight=False)

    _guarded(body)


@moderator_app.command("list")
def moderator_list(config: ConfigOpt = None) -> None:
    """The moderators, by name (passwords are stored as argon2 hashes only)."""
    def body() -> None:
        for row in _store(_load(config)).moderators():
            print(f"{row['name']}\tsince {row['created_at']}")

    _guarded(body)


@moderator_app.command("remove")
def moderator_remove(name: Annotated[str, typer.Argument(help="The moderator's sign-in name")],
                     config: ConfigOpt = None) -> None:
    """Remove a moderator: their sessions stop working at once."""
    def body() -> None:
        if not _store(_load(config)).remove_moderator(name):
            raise _fail(f"no moderator named {name!r}", 1)
        _console().print(f"Moderator {name} removed.", highlight=False)

    _guarded(body)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration and print the effective values, secrets masked."""
    from rich.table import Table

    def body() -> None:
        loaded = _load(config)
        table = Table(title=f"Configuration ({loaded.source})", show_lines=False)
        table.add_column("key")
        table.add_column("value")
        for key, value in effective_settings(loaded):
            table.add_row(key, value)
        _console().print(table)

    _guarded(body)


def effective_settings(c: Config) -> list[tuple[str, str]]:
    """The config as key/value lines, secrets shown only as set or missing."""
    def secret(v: str) -> str:
        return "*** (set)" if v else "(missing)"
    rows = [("hashtag", "#" + c.hashtag), ("language", c.language), ("database", str(c.database))]
    rows += [("mastodon.enabled", str(c.mastodon.enabled)),
             ("mastodon.api_base_url", c.mastodon.api_base_url),
             ("mastodon.access_token", secret(c.mastodon.access_token)),
             ("mastodon.discovery_instances", ", ".join(c.mastodon.discovery_instances))]
    rows += [("bluesky.enabled", str(c.bluesky.enabled)), ("bluesky.service", c.bluesky.service),
             ("bluesky.handle", c.bluesky.handle), ("bluesky.app_password", secret(c.bluesky.password)),
             ("bluesky.source", c.bluesky.source)]
    f = c.bluesky.feeds
    rows += [("bluesky.feeds.enabled", str(f.enabled)), ("bluesky.feeds.service_did", f.service_did),
             ("bluesky.feeds.plc_directory", f.plc_directory)]
    rows += [(f"categories.{cat.number}", f"{cat.key} ({cat.title(c.language)}) {' '.join(cat.aliases)}")
             for cat in c.categories]
    p = c.policy
    rows += [("policy.prompt", p.prompt), ("policy.boost", p.boost), ("policy.acknowledge", p.acknowledge),
             ("policy.prompt_timeout_hours", f"{p.prompt_timeout_hours:g}"),
             ("policy.max_prompts_per_author_per_day", str(p.max_prompts_per_author_per_day)),
             ("policy.moderators", ", ".join(p.moderators)), ("policy.bots", p.bots)]
    w = c.web
    rows += [("web.enabled", str(w.enabled)), ("web.bind", w.bind), ("web.public_url", w.public_url),
             ("web.title", w.title), ("web.trusted_proxies", ", ".join(w.trusted_proxies))]
    return rows


@app.command()
def export(config: ConfigOpt = None,
           format: Annotated[str, typer.Option("--format", "-f", help="json or csv")] = "json",
           since: Annotated[Optional[str], typer.Option(help="Only items created since this date")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="File [default: stdout]")] = None,
           ) -> None:
    """Export every item as JSON or CSV (fields listed in the README)."""
    from bot import export as ex

    if format not in ex.FORMATS:
        raise _fail(f"--format: expected one of {', '.join(ex.FORMATS)}, got {format!r}", 2)
    start = _date(since, "--since")

    def body() -> None:
        store = _store(_load(config))
        if out is None:
            ex.write(ex.rows(store, start), format, sys.stdout)
            return
        with out.open("w", encoding="utf-8", newline="") as fh:
            count = ex.write(ex.rows(store, start), format, fh)
        _console().print(f"{count} items written to {out}", highlight=False)

    _guarded(body)


@app.command()
def stats(config: ConfigOpt = None) -> None:
    """Items per network, category and state."""
    from rich.table import Table

    def body() -> None:
        store = _store(_load(config))
        table = Table(title="numpolville — items")
        for col in ("network", "category", "state", "items", "boosted"):
            table.add_column(col, justify="right" if col in ("items", "boosted") else "left")
        rows = store.stats()
        for row in rows:
            table.add_row(row["network"], row["category"] or "—", row["state"], str(row["items"]),
                          str(row["boosted"]))
        table.caption = f"{sum(r['items'] for r in rows)} items in {store.path}"
        _console().print(table)

    _guarded(body)


@app.command()
def classify(uri: Annotated[str, typer.Argument(help="The item's URI or URL")],
             category: Annotated[str, typer.Argument(help="A category key, e.g. contexte")],
             config: ConfigOpt = None,
             by: Annotated[str, typer.Option(help="Who decided (logged)")] = "cli",
             ) -> None:
    """Classify an item by hand (a moderator decision). The boost follows on the next `run`."""
    from bot.curator import Curator
    from bot.model import ModeratorDecision

    def body() -> None:
        loaded = _load(config)
        if loaded.category(category) is None:
            keys = ", ".join(c.key for c in loaded.categories)
            raise _fail(f"unknown category {category!r}; expected one of: {keys}", 2)
        store = _store(loaded)
        item = store.find_item(uri)
        if item is None:
            raise _fail(f"no item with URI or URL {uri!r}", 1)
        Curator(loaded, store).handle(ModeratorDecision(item.network, item.uri, category, by))
        _console().print(f"{item.uri} → {category}", highlight=False)

    _guarded(body)


@app.command("import")
def import_(since: Annotated[str, typer.Option(help="Import posts created since this date")],
            until: Annotated[Optional[str], typer.Option(
                help="... and before this date [default: when the first import from --since began]")]
            = None,
            network: Annotated[Optional[str], typer.Option(help="mastodon or bluesky [default: both]")]
            = None,
            config: ConfigOpt = None,
            ) -> None:
    """Record the hashtag's past posts (resumable; never prompted nor boosted by default)."""
    from bot import history

    start, end = _date(since, "--since"), _date(until, "--until")
    if network not in (None, "mastodon", "bluesky"):
        raise _fail(f"--network: expected mastodon or bluesky, got {network!r}", 2)
    assert start is not None
    if start >= (end or datetime.now(timezone.utc)):
        raise _fail("--since must come before --until", 2)

    def body() -> None:
        from bot.adapter import PermanentError

        loaded = _load(config)
        try:
            tallies = history.import_history(loaded, _store(loaded), start, end,
                                             (network,) if network else ("mastodon", "bluesky"),
                                             _console())
        except PermanentError as e:  # a refused token or password, a server that will not answer
            raise _fail(str(e), 1) from None
        for t in tallies:
            _console().print(f"{t.network} {t.source}: {t.requests} requests, {t.posts} posts, "
                             f"{t.recorded} new items", highlight=False)

    _guarded(body)


@app.command()
def forget(author: Annotated[str, typer.Argument(help="Handle (alice@example.org, alice.bsky.social) or id")],
           config: ConfigOpt = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
           ) -> None:
    """Erase an author's items, events and pending actions, off the disk too (a data-protection
    request). If she had said "stop", only that is kept (no text, no handle): she is not asked
    again."""
    def body() -> None:
        store = _store(_load(config))
        if not yes and not typer.confirm(f"Erase every item and event of {author}?"):
            raise typer.Exit(1)
        count = store.forget(author)
        _console().print(f"Erased {count} items of {author}.", highlight=False)

    _guarded(body)


@app.command()
def status(config: ConfigOpt = None,
           max_silence: Annotated[float, typer.Option(
               help="Seconds without a heartbeat or with failures before a source counts as down")] = 300,
           json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
           ) -> None:
    """Health of the running bot, per source. Exits 1 when a source is silent or failing for
    longer than --max-silence (usable as a health check)."""
    from bot.health import assess

    def body() -> None:
        report = assess(_store(_load(config)).health(), max_silence)
        if json_output:
            import json

            print(json.dumps(report, indent=2))
        else:
            _print_status(report)
        if not report["healthy"]:
            raise typer.Exit(1)

    _guarded(body)


def _print_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="numpolville — sources")
    for col in ("network", "source", "mode", "state", "last event", "heartbeat", "reconnects", "problem"):
        table.add_column(col)
    for s in report["sources"]:
        style = "" if s["ok"] else "red"
        mode = s["mode"] or ""
        if s.get("reason"):  # a source that could stream but polls says why
            mode += f" ({s['reason']})"
        table.add_row(s["network"], s["name"], mode, s["state"], s["last_event_ago"],
                      s["heartbeat_ago"], str(s["reconnects"]), s["problem"], style=style)
    console = _console()
    console.print(table)
    from bot.mastodon.server import ServerInfo

    for server in report.get("servers", ()):
        console.print(f"{server['network']} server {server['base_url']}: "
                      f"{ServerInfo(**server['info']).describe()}", markup=False, highlight=False)
    if report.get("boosts_awaiting_approval") or report.get("boosts_refused"):
        console.print(f"boosts awaiting the author's approval: {report['boosts_awaiting_approval']}, "
                      f"refused by the author's policy: {report['boosts_refused']}")
    console.print(f"{report['items']} items, {report['waiting']} waiting for an answer, "
                  f"{report['pending_intents']} pending actions, {report['failed_intents']} given up. "
                  + ("[green]healthy[/]" if report["healthy"] else f"[red]unhealthy: {report['problem']}[/]"))


@app.command("systemd-unit")
def systemd_unit(workdir: Annotated[Path, typer.Option(
                     help="Folder holding config/, data/ and .env")] = Path("."),
                 user: Annotated[str, typer.Option(help="System user running the bot")] = "numpolville",
                 ) -> None:
    """Print a hardened systemd unit for `numpolville run` (Type=notify, watchdog)."""
    from bot.systemd import unit

    print(unit(workdir.resolve(), user), end="")


@app.command()
def digest(config: ConfigOpt = None,
           format: Annotated[str, typer.Option("--format", "-f",
                                               help="md, html, rss, atom or json")] = "html",
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="File [default: stdout]")] = None,
           week: Annotated[bool, typer.Option(help="The last full ISO week (the default)")] = False,
           since: Annotated[Optional[str], typer.Option(help="Start date, e.g. 2026-11-16")] = None,
           until: Annotated[Optional[str], typer.Option(help="End date (that whole day included)")] = None,
           post: Annotated[bool, typer.Option("--post",
                                              help="Also publish it as a thread on each network")] = False,
           ) -> None:
    """The weekly "veille": items grouped by category, as a page, a feed, a newsletter or JSON."""
    from bot import digest as dg

    if format not in dg.FORMATS:
        raise _fail(f"--format: expected one of {', '.join(dg.FORMATS)}, got {format!r}", 2)

    def body() -> None:
        loaded = _load(config)
        try:
            period = dg.period_from_args(now=datetime.now(timezone.utc), tz_name=loaded.digest.timezone,
                                         week=week, since=since, until=until)
        except ValueError as e:
            raise _fail(str(e), 2) from None
        store = _store(loaded)
        result = dg.write_digest(store, loaded, format, out, period)
        if out is None:
            sys.stdout.write(str(result))
        else:
            _console(stderr=True).print(f"Digest {period.key} written to {result}", highlight=False)
        if post:
            _post_digest(loaded, store, dg.build_digest(store, loaded, period))

    _guarded(body)


def _post_digest(config: Config, store: Store, built: Any) -> None:
    from bot import config as cfg
    from bot.digest import publish_digest
    from bot.runtime import build_adapters

    cfg.check_ready(config)
    adapters = build_adapters(config, store)
    for adapter in adapters:
        adapter.connect()
    posted = publish_digest(store, config, adapters, built)
    for network, refs in posted.items():
        _console(stderr=True).print(f"Posted on {network}: {len(refs)} posts", highlight=False)


@app.command()
def init(config: ConfigOpt = None,
         env_file: Annotated[Path, typer.Option(help="Where the secrets go (mode 0600)")] = Path(".env"),
         mastodon: Annotated[Optional[bool], typer.Option(
             "--mastodon/--no-mastodon", help="Set up Mastodon [default: ask]", show_default=False)] = None,
         mastodon_server: Annotated[Optional[str], typer.Option(help="The bot account's server")] = None,
         mastodon_code: Annotated[Optional[str], typer.Option(
             help="The authorization code shown after authorizing the app")] = None,
         bluesky: Annotated[Optional[bool], typer.Option(
             "--bluesky/--no-bluesky", help="Set up Bluesky [default: ask]", show_default=False)] = None,
         bluesky_service: Annotated[Optional[str], typer.Option(help="PDS or entryway URL")] = None,
         bluesky_handle: Annotated[Optional[str], typer.Option(help="The bot account's handle")] = None,
         bluesky_password: Annotated[Optional[str], typer.Option(
             help="An app password (better: $NUMPOLVILLE_BLUESKY_PASSWORD or a prompt)")] = None,
         non_interactive: Annotated[bool, typer.Option(
             "--non-interactive", help="Never ask: flags and existing values only")] = False,
         ) -> None:
    """Set up the bot: register on Mastodon, check the Bluesky login, write the config and .env.
    Re-running keeps what still works."""
    from rich.markup import escape

    from bot import config as cfg
    from bot import setup_wizard as wiz

    def body() -> None:
        opts = wiz.InitOptions(cfg.resolve_path(config), env_file, mastodon, mastodon_server,
                               mastodon_code, bluesky, bluesky_service, bluesky_handle, bluesky_password)
        try:
            wiz.run(opts, wiz.FlagsOnly() if non_interactive else wiz.RichPrompter())
        except wiz.InitError as e:
            raise _fail(escape(str(e)), e.exit_code) from None
        _console().print("Next: [bold]numpolville doctor[/], then [bold]numpolville run[/].")

    _guarded(body)


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check the config, accounts, database, streaming, clock and rate limits; say how to fix what
    fails. Exits 1 on any failure (2 when the config itself is invalid)."""
    from bot.doctor import run_checks

    marks = {"pass": "[green]✔[/]", "warn": "[yellow]![/]", "fail": "[red]✘[/]", "n/a": "[dim]·[/]"}

    def body() -> None:
        console, results = _console(), []
        for check in run_checks(config):
            results.append(check)
            console.print(f"{marks[check.status]} [bold]{check.name}[/]: {check.detail}", highlight=False,
                          soft_wrap=True)
            if check.fix and check.status != "pass":
                console.print(f"    [dim]fix:[/] {check.fix}", highlight=False, soft_wrap=True)
        failures = [c for c in results if not c.ok]
        if failures:
            raise _fail(f"{len(failures)} check(s) failed", 2 if failures[0].name == "config" else 1)
        console.print("[green]All checks passed.[/]")

    _guarded(body)


@app.command()
def browse(config: ConfigOpt = None,
           host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
           port: Annotated[int, typer.Option(help="Port to listen on")] = 8001,
           open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open a web browser")] = True,
           ) -> None:
    """Browse the database in Datasette (tables explained, canned queries). Needs the extra:
    pip install 'numpolville-bot[browse]'."""
    from rich.markup import escape

    from bot.browse import BrowseError, serve

    def body() -> None:
        try:
            code = serve(_load(config).database, host, port, open_browser)
        except BrowseError as e:  # its text shows `[browse]`, which is not markup
            raise _fail(escape(str(e)), 1) from None
        if code:
            raise typer.Exit(1)

    _guarded(body)


def _feeds_client(config: Config) -> tuple[Any, str]:
    """The bot's logged-in Bluesky client and DID, once the feeds are configured."""
    from bot import config as cfg
    from bot.bluesky.session import open_client, session_path

    b = config.bluesky
    if not b.feeds.enabled:
        raise cfg.ConfigError(config.source, "bluesky.feeds.enabled", "true to publish the feeds")
    if not (b.handle and b.password):
        raise cfg.ConfigError(config.source, "bluesky.handle / app password",
                              f"the bot's handle and ${cfg.ENV_BLUESKY_PASSWORD} to write its records")
    return open_client(b, session_path(config.database))


def _feeds_command(action: str, config_path: Path | None) -> None:
    from atproto_client.exceptions import AtProtocolError

    from bot.feedgen import publish as pub

    def body() -> None:
        loaded = _load(config_path)
        client, did = _feeds_client(loaded)
        try:
            act = pub.publish if action == "publish" else pub.unpublish
            done = act(client, did, loaded, _store(loaded))
        except AtProtocolError as e:
            raise _fail(f"Bluesky refused: {type(e).__name__}", 1) from None
        for p in done:
            print(f"{p.outcome:9} {p.key:12} {p.uri}")

    _guarded(body)


@feeds_app.command("publish")
def feeds_publish(config: ConfigOpt = None) -> None:
    """Write the feed generator records into the bot's repository (an unchanged one is left)."""
    _feeds_command("publish", config)


@feeds_app.command("unpublish")
def feeds_unpublish(config: ConfigOpt = None) -> None:
    """Delete the feed generator records from the bot's repository."""
    _feeds_command("unpublish", config)


@feeds_app.command("list")
def feeds_list(config: ConfigOpt = None) -> None:
    """Each feed: its name, whether it is published, its at:// URI and its link in the app."""
    from bot.feedgen.feeds import feed_link, feeds

    def body() -> None:
        loaded = _load(config)
        published = _store(loaded).feed_generators()
        for feed in feeds(loaded):
            uri = published.get(feed.key)  # at://DID/...: the link by DID outlives a handle change
            where = f"{uri}  {feed_link(uri.split('/')[2], feed.key)}" if uri else "not published"
            print(f"{feed.key:12} {feed.name}  {where}")
        if not published:
            print("No feed published yet: `numpolville feeds publish`.")

    _guarded(body)


@app.command("bench-ingest", hidden=True)
def bench_ingest(firehose: Annotated[Optional[Path], typer.Option(help="4-byte length + frame")] = None,
                 jetstream: Annotated[Optional[Path], typer.Option(help="Jetstream JSON lines")] = None,
                 bot_did: Annotated[str, typer.Option(help="The bot's DID")] = "did:plc:bench",
                 tag: Annotated[str, typer.Option(help="The hashtag")] = "numpolville",
                 total: Annotated[int, typer.Option(help="Messages to replay (the corpus looped)")] = 200_000,
                 ) -> None:
    """Replay a corpus through the bot's ingest path and print messages/s (benchmarks)."""
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # bench/ sits beside bot/
    from bench import ingest as bi
    from bench.record import read_frames, read_lines

    if (firehose is None) == (jetstream is None):
        raise _fail("give exactly one of --firehose FILE and --jetstream FILE", 2)
    kind, messages = (("firehose", read_frames(firehose)) if firehose else
                      ("jetstream", read_lines(jetstream)))  # type: ignore[arg-type]
    r = bi.measure(bi.bot_path(kind, bot_did, tag), messages, total)
    print(f"{kind}: {r['messages']} messages in {r['seconds']:.2f} s: {r['per_second']:,.0f}/s "
          f"({r['us_per_message']:.2f} us each), {r['events_per_pass']} events per corpus pass")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
