"""`numpolville init`: from nothing to a configured bot, interactively or from flags.

Mastodon: register the app, show the authorization URL, trade the pasted code for a token.
Bluesky: verify the handle and app password. The config file is the example (or the existing
file) with a few lines edited, so every comment stays; secrets go to `.env` (mode 0600).
Re-running keeps what still works: an accepted token is not replaced, the app is not registered
again, and existing values are the prompts' defaults. Secrets are never printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot import config as cfg

SCOPES = ["read:accounts", "read:follows", "read:statuses", "read:notifications", "read:search",
          "write:statuses", "write:favourites", "write:accounts"]
"""What the bot calls: streams, timelines, notifications, search (discovery), relationships and
followers; posts, boosts, favourites, and the profile's bot flag. Nothing else."""
OOB = "urn:ietf:wg:oauth:2.0:oob"
APP_NAME = "numpolville-bot"
ENV_CLIENT = ("NUMPOLVILLE_MASTODON_CLIENT_SERVER", "NUMPOLVILLE_MASTODON_CLIENT_ID",
              "NUMPOLVILLE_MASTODON_CLIENT_SECRET")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
APP_PASSWORD_HELP = ("Bluesky needs an *app password*, not the account's password: on bsky.app, "
                     "Settings → Privacy and security → App passwords → Add App Password.")


class InitError(RuntimeError):
    """Something the person must do; `exit_code` 2 when an input is missing (usage)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Prompter(Protocol):
    def ask(self, question: str, default: str = "", *, flag: str, password: bool = False) -> str: ...
    def confirm(self, question: str, default: bool) -> bool: ...
    def say(self, text: str) -> None: ...


class RichPrompter:
    """Asks on the terminal (rich prompts); passwords are not echoed."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console()

    def ask(self, question: str, default: str = "", *, flag: str, password: bool = False) -> str:
        from rich.prompt import Prompt

        if password and default:
            answer = Prompt.ask(f"{question} [dim](Enter keeps the saved one)[/]", password=True,
                                default="", show_default=False, console=self.console)
            return answer or default
        answer = ""
        while not answer.strip():
            answer = (Prompt.ask(question, password=password, console=self.console, default=default)
                      if default else Prompt.ask(question, password=password, console=self.console))
        return answer.strip()

    def confirm(self, question: str, default: bool) -> bool:
        from rich.prompt import Confirm

        return Confirm.ask(question, default=default, console=self.console)

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)  # URLs stay whole


class FlagsOnly(RichPrompter):
    """--non-interactive: defaults are the answers; a question without one names its flag."""

    def ask(self, question: str, default: str = "", *, flag: str, password: bool = False) -> str:
        if not default:
            raise InitError(f"{question}: no value; pass {flag}", 2)
        return default

    def confirm(self, question: str, default: bool) -> bool:
        return default


@dataclass
class InitOptions:
    config: Path
    env_file: Path = Path(".env")
    mastodon: bool | None = None  # None: ask (or keep what the config says)
    mastodon_server: str | None = None
    mastodon_code: str | None = None
    bluesky: bool | None = None
    bluesky_service: str | None = None
    bluesky_handle: str | None = None
    bluesky_password: str | None = None


# ---- the wizard ----------------------------------------------------------------------------------

def run(opts: InitOptions, ui: Prompter) -> cfg.Config:
    """Ask, verify, write the config and `.env`; returns the written configuration."""
    text, current = _current_config(opts.config)
    env = read_env(opts.env_file)
    edits: dict[tuple[str, str], Any] = {}

    use = _enabled(ui, "Mastodon", opts.mastodon, current.mastodon.enabled,
                   opts.mastodon_server or opts.mastodon_code or env.get(ENV_CLIENT[0]))
    edits[("mastodon", "enabled")] = use
    if use:
        server = _setup_mastodon(opts, ui, current, env)
        edits[("mastodon", "api_base_url")] = server
    use = _enabled(ui, "Bluesky", opts.bluesky, current.bluesky.enabled,
                   opts.bluesky_handle or opts.bluesky_password)
    edits[("bluesky", "enabled")] = use
    if use:
        service, handle = _setup_bluesky(opts, ui, current, env)
        edits[("bluesky", "service")] = service
        edits[("bluesky", "handle")] = handle

    for (section, key), value in edits.items():
        text = set_toml_value(text, section, key, value)
    written = cfg.parse(tomllib.loads(text), str(opts.config))  # never write a file `load` refuses
    _write_atomic(opts.config, text, 0o644)
    ui.say(f"[green]✔[/] configuration written to {opts.config}")
    if env:
        ui.say(f"[green]✔[/] secrets in {opts.env_file} (mode 0600)" + _ignored_note(opts.env_file))
    return written


def _current_config(path: Path) -> tuple[str, cfg.Config]:
    """The text to edit (the existing file, else the example) and what it says now."""
    source = path if path.exists() else find_example()
    text = source.read_text(encoding="utf-8") if source else ""
    try:
        parsed = cfg.parse(tomllib.loads(text), str(source)) if text else cfg.Config()
    except tomllib.TOMLDecodeError as e:
        raise cfg.ConfigError(str(source), "(syntax)", f"valid TOML ({e}); fix or remove the file") from None
    if not path.exists():  # the example's "example" values are not choices the person made
        parsed = cfg.Config()
    return text, parsed


def find_example() -> Path | None:
    """config/numpolville.example.toml here, else beside the package (editable install)."""
    name = Path("config/numpolville.example.toml")
    for candidate in (name, Path(__file__).resolve().parent.parent / name):
        if candidate.exists():
            return candidate
    return None


def _enabled(ui: Prompter, network: str, flag: bool | None, current: bool, given: object) -> bool:
    if flag is not None:
        return flag
    return ui.confirm(f"Use {network}?", default=current or bool(given))


def _setup_mastodon(opts: InitOptions, ui: Prompter, current: cfg.Config, env: dict[str, str]) -> str:
    """The server URL; a working token in `.env` (kept if still accepted)."""
    ui.say("\n[bold]Mastodon[/] — the bot's account on its home server")
    default = (opts.mastodon_server or current.mastodon.api_base_url
               or env.get(ENV_CLIENT[0], ""))
    server = normalize_server(ui.ask("Server of the bot account (e.g. https://piaille.fr)", default,
                                     flag="--mastodon-server"))
    token = env.get(cfg.ENV_MASTODON_TOKEN) or os.environ.get(cfg.ENV_MASTODON_TOKEN, "")
    account = mastodon_account(server, token) if token and not opts.mastodon_code else None
    if account is not None:
        ui.say(f"[green]✔[/] the saved token is accepted: @{account['acct']} on {server}")
        return server
    client_id, secret = _app(server, env, opts.env_file, ui)
    code = opts.mastodon_code
    if not code:
        ui.say("Open this address, log in as the [bold]bot account[/] and authorize the app:\n"
               f"  {authorization_url(server, client_id, current.language)}")
        code = ui.ask("Authorization code", flag="--mastodon-code (after opening the address above)")
    token = exchange_code(server, client_id, secret, code.strip())
    account = mastodon_account(server, token)
    if account is None:
        raise InitError("the server gave a token it does not accept; run `numpolville init` again")
    if current.mastodon.set_bot_flag and not account.get("bot"):
        _mastodon(server, token).account_update_credentials(bot=True)
    env[cfg.ENV_MASTODON_TOKEN] = token
    write_env(opts.env_file, env)
    ui.say(f"[green]✔[/] logged in as @{account['acct']}; token saved (not shown)")
    return server


def _app(server: str, env: dict[str, str], env_file: Path, ui: Prompter) -> tuple[str, str]:
    """The registered app for this server: reused from `.env`, else registered and saved at once
    (the code pasted in a later run belongs to it)."""
    saved_server, saved_id, saved_secret = (env.get(k, "") for k in ENV_CLIENT)
    if saved_server == server and saved_id and saved_secret:
        return saved_id, saved_secret
    client_id, secret = register_app(server)
    env.update(zip(ENV_CLIENT, (server, client_id, secret), strict=True))
    write_env(env_file, env)
    ui.say(f"[green]✔[/] app {APP_NAME!r} registered on {server}")
    return client_id, secret


def _setup_bluesky(opts: InitOptions, ui: Prompter, current: cfg.Config,
                   env: dict[str, str]) -> tuple[str, str]:
    """The service and handle; an app password in `.env` that logs in."""
    ui.say("\n[bold]Bluesky[/] — the bot's account")
    service = ui.ask("Service (PDS or entryway)", (opts.bluesky_service or current.bluesky.service
                                                   or cfg.BlueskyConfig().service), flag="--bluesky-service")
    service = service.rstrip("/")
    handle = ui.ask("Handle of the bot account (e.g. numpolville.bsky.social)",
                    opts.bluesky_handle or current.bluesky.handle, flag="--bluesky-handle").lstrip("@")
    saved = env.get(cfg.ENV_BLUESKY_PASSWORD) or os.environ.get(cfg.ENV_BLUESKY_PASSWORD, "")
    if not (opts.bluesky_password or saved):
        ui.say(APP_PASSWORD_HELP)
    password = ui.ask("App password", opts.bluesky_password or saved, flag="--bluesky-password",
                      password=True)
    did = bluesky_login(service, handle, password)
    env[cfg.ENV_BLUESKY_PASSWORD] = password
    write_env(opts.env_file, env)
    ui.say(f"[green]✔[/] logged in as {handle} ({did}); app password saved (not shown)")
    return service, handle


# ---- Mastodon ------------------------------------------------------------------------------------

def normalize_server(url: str) -> str:
    """https:// added to a bare domain; plain http only for this machine (the test servers)."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InitError(f"{url!r} is not a server address such as https://piaille.fr", 2)
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise InitError(f"{url}: use https (plain http only for 127.0.0.1 / localhost)", 2)
    return url


def _mastodon(server: str, token: str | None = None) -> Any:
    from bot.mastodon.client import make_client

    return make_client(server, token)


def mastodon_account(server: str, token: str) -> dict[str, Any] | None:
    """The token's account, None when the server refuses the token."""
    from mastodon.errors import MastodonNetworkError, MastodonUnauthorizedError

    try:
        return dict(_mastodon(server, token).account_verify_credentials())
    except MastodonUnauthorizedError:
        return None
    except MastodonNetworkError as e:
        raise InitError(f"cannot reach {server}: {type(e).__name__}; check the address") from None


def register_app(server: str) -> tuple[str, str]:
    from mastodon import Mastodon

    from bot.mastodon.client import REQUEST_TIMEOUT, USER_AGENT

    client = _mastodon(server)
    try:
        return Mastodon.create_app(APP_NAME, scopes=SCOPES, redirect_uris=OOB, api_base_url=server,
                                   session=client.session, user_agent=USER_AGENT,
                                   request_timeout=REQUEST_TIMEOUT)
    except Exception as e:  # noqa: BLE001 — Mastodon.py raises KeyError on a refusal
        raise InitError(f"{server} refused to register the app ({type(e).__name__}); "
                        "is it a Mastodon server?") from None


def _oauth_client(server: str, client_id: str, secret: str) -> Any:
    client = _mastodon(server)
    client.client_id, client.client_secret = client_id, secret
    return client


def authorization_url(server: str, client_id: str, language: str = "fr") -> str:
    return _oauth_client(server, client_id, "").auth_request_url(
        redirect_uris=OOB, scopes=SCOPES, lang=language, allow_http=server.startswith("http://"))


def exchange_code(server: str, client_id: str, secret: str, code: str) -> str:
    from mastodon.errors import MastodonError

    try:
        return str(_oauth_client(server, client_id, secret).log_in(
            code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=server.startswith("http://")))
    except MastodonError:
        raise InitError("the server refused the authorization code (mistyped, used or expired?); "
                        "run `numpolville init` again for a new one") from None


# ---- Bluesky -------------------------------------------------------------------------------------

def bluesky_login(service: str, handle: str, password: str) -> str:
    """Log in with the password itself (a saved session would not prove it); returns the DID."""
    from atproto import Client, Session
    from atproto_client.exceptions import AtProtocolError, NetworkError

    client = Client(base_url=service)
    try:
        client.login(handle, password, fetch_bsky_profile=False)
    except NetworkError:
        raise InitError(f"cannot reach {service}; check the service address") from None
    except AtProtocolError:
        raise InitError(f"{service} refused {handle} with this app password. {APP_PASSWORD_HELP}") from None
    return Session.decode(client.export_session_string()).did


# ---- files ---------------------------------------------------------------------------------------

def set_toml_value(text: str, section: str, key: str, value: str | bool) -> str:
    """Set `key` in `[section]`, editing the one line (comments stay): the existing assignment is
    replaced, else the line goes at the end of the section (appended if the section is missing)."""
    line = f"{key} = {json.dumps(value, ensure_ascii=False)}"
    lines = text.splitlines()
    header = next((i for i, s in enumerate(lines) if s.strip() == f"[{section}]"), None)
    if header is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{line}\n"
    end = next((i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    for i in range(header + 1, end):
        if lines[i].split("=", 1)[0].strip() == key:
            lines[i] = line
            break
    else:
        while end > header + 1 and not lines[end - 1].strip():
            end -= 1
        lines.insert(end, line)
    return "\n".join(lines) + "\n"


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (same reading as `config.load_dotenv`)."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip().strip("'\"")
    return out


def write_env(path: Path, values: dict[str, str]) -> None:
    """Rewrite `.env` with `values` merged in, keeping other lines and comments; mode 0600."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else [
        "# numpolville-bot secrets (written by `numpolville init`). Keep this file private."]
    todo = dict(values)
    for i, line in enumerate(lines):
        key = line.partition("=")[0].strip()
        if "=" in line and key in todo:
            lines[i] = f"{key}={todo.pop(key)}"
    lines += [f"{k}={v}" for k, v in todo.items()]
    _write_atomic(path, "\n".join(lines) + "\n", 0o600)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write a temporary file created with `mode` (never briefly world-readable), then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _ignored_note(path: Path) -> str:
    """'' when git ignores the file (or there is no git repository); else a warning to act on."""
    try:
        result = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=path.parent,
                                capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    if result.returncode == 1:  # 0: ignored, 128: not a repository
        return f"\n[yellow]Warning:[/] git does not ignore {path}: add it to .gitignore"
    return ""
