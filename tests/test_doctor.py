"""`numpolville doctor` against the local servers, passing and failing: bad token, streaming off,
server down, read-only database, bad clock, low rate-limit headroom, invalid config."""

from __future__ import annotations

import os
import socket
from email.utils import formatdate
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import doctor
from bot.bluesky.adapter import BlueskyAdapter
from bot.cli import app
from bot.config import ENV_BLUESKY_PASSWORD, ENV_MASTODON_TOKEN, load
from bot.store import Store
from tests.test_bluesky_profile import new_account

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_MASTODON_TOKEN, raising=False)
    monkeypatch.delenv(ENV_BLUESKY_PASSWORD, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def write_config(tmp_path: Path, mastodon: str = "", bluesky: tuple[str, str] | None = None,
                 extra: str = "", bluesky_extra: str = "") -> Path:
    path = tmp_path / "numpolville.toml"
    text = f'database = "{tmp_path / "data" / "db.sqlite"}"\n'
    if mastodon:
        text += f'[mastodon]\nenabled = true\napi_base_url = "{mastodon}"\n{extra}\n'
    if bluesky:
        text += (f'[bluesky]\nenabled = true\nservice = "{bluesky[0]}"\nhandle = "{bluesky[1]}"\n'
                 f'{bluesky_extra}\n')
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def masto(mastodon_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config for a bot account (flagged as a bot, one follower) with its token set."""
    bot_id, token = mastodon_server.create_account("bot", bot=True)
    mastodon_server.create_account("alice")
    mastodon_server.follow("alice", "bot")
    monkeypatch.setenv(ENV_MASTODON_TOKEN, token)
    return write_config(tmp_path, mastodon_server.base_url)


def doctor_cli(config: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["doctor", "--config", str(config)])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def by_name(config: Path) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.run_checks(config)}


def test_everything_passes(masto: Path) -> None:
    code, out = doctor_cli(masto)
    assert code == 0, out
    for name in ("config", "database", "mastodon token", "mastodon bot flag", "mastodon followers",
                 "mastodon server", "mastodon streaming", "mastodon clock", "mastodon rate limit"):
        assert f"✔ {name}:" in out, name
    assert "All checks passed" in out


def test_bad_token_fails_with_the_fix(masto: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MASTODON_TOKEN, "BAD-TOKEN-0123")
    code, out = doctor_cli(masto)
    assert code == 1 and "✘ mastodon token" in out and "numpolville init" in out
    assert "BAD-TOKEN-0123" not in out  # never print a secret, even a bad one


def test_streaming_off_is_only_a_warning(masto: Path, mastodon_server) -> None:
    mastodon_server.streaming_enabled = False
    code, out = doctor_cli(masto)
    assert code == 0, out
    assert "! mastodon streaming" in out and "still read by polling every 60 s" in out


def test_each_server_family_is_named_with_what_it_can_do(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.mastodon_server import MastodonServer

    outs = {}
    for flavour, line in (("gotosocial", "! mastodon server: gotosocial 0.19.2+git-6ef3fa0; "
                                         "streaming: WebSocket at ws://"),
                          ("akkoma", "✔ mastodon server: akkoma 2.7.2 (compatible; Akkoma 3.15.2); "
                                     "streaming: WebSocket at ws://")):
        with MastodonServer(flavour=flavour) as server:
            _, token = server.create_account("bot", bot=True)
            monkeypatch.setenv(ENV_MASTODON_TOKEN, token)
            code, out = doctor_cli(write_config(tmp_path, server.base_url))
        assert code == 0 and line in out, out
        assert "✔ mastodon streaming: opens at ws://" in out, out
        outs[flavour] = out
    assert "no Idempotency-Key: a retried prompt is looked for in the thread" in outs["gotosocial"]
    assert "Idempotency-Key" not in outs["akkoma"]


def test_unreachable_server_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(ENV_MASTODON_TOKEN, "tok")
    code, out = doctor_cli(write_config(tmp_path, f"http://127.0.0.1:{port}"))
    assert code == 1 and "✘ mastodon token" in out and "cannot reach" in out


def test_account_not_flagged_as_bot(mastodon_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = mastodon_server.create_account("human")
    monkeypatch.setenv(ENV_MASTODON_TOKEN, token)
    checks = by_name(write_config(tmp_path, mastodon_server.base_url))
    assert checks["mastodon bot flag"].status == "warn"  # `run` will set it
    checks = by_name(write_config(tmp_path, mastodon_server.base_url, extra="set_bot_flag = false"))
    assert checks["mastodon bot flag"].status == "fail" and "automated" in checks["mastodon bot flag"].fix


def test_read_only_database_fails(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores modes: use a filesystem nobody may write to
        ro = Path("/sys/numpolville-doctor")
    check = doctor.database(ro / "db.sqlite")
    assert check.status == "fail" and "writable" in check.fix


def test_database_passes_and_is_migrated(tmp_path: Path) -> None:
    check = doctor.database(tmp_path / "new" / "db.sqlite")
    assert check.ok and "latest" in check.detail


def test_invalid_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('language = "de"\n', encoding="utf-8")
    code, out = doctor_cli(path)
    assert code == 2 and "✘ config" in out and "language" in out


def test_nothing_enabled_fails(tmp_path: Path) -> None:
    assert not by_name(write_config(tmp_path))["networks"].ok


def test_clock_skew() -> None:
    now = 1_800_000_000.0
    assert doctor.skew("c", formatdate(now - 5, usegmt=True), now).status == "pass"
    late = doctor.skew("c", formatdate(now - 90, usegmt=True), now)
    assert late.status == "fail" and "+90 s" in late.detail and "ntp" in late.fix
    assert doctor.skew("c", None, now).status == "warn"


def test_rate_limit_headroom() -> None:
    assert doctor.headroom("r", 290, 300).status == "pass"
    assert doctor.headroom("r", 20, 300).status == "warn"


def test_a_crashing_check_is_a_failed_line() -> None:
    check = doctor.guarded("x", lambda: 1 / 0)
    assert check.status == "fail" and "ZeroDivisionError" in check.detail


def test_bluesky(bsky_network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bot = bsky_network.accounts["bot"]
    config = write_config(tmp_path, bluesky=(bsky_network.pds_url, bot["handle"]))
    monkeypatch.setenv(ENV_BLUESKY_PASSWORD, bot["password"])
    checks = by_name(config)
    assert checks["bluesky login"].status == "pass" and bot["did"] in checks["bluesky login"].detail
    assert checks["bluesky bot label"].status in ("pass", "warn")  # the shared bot account
    assert checks["bluesky clock"].status == "pass"
    assert checks["bluesky followers"].ok == bsky_network.has_appview

    (tmp_path / "data" / ".bluesky-session").unlink()  # else the saved session is used
    monkeypatch.setenv(ENV_BLUESKY_PASSWORD, "wrong")
    login = by_name(config)["bluesky login"]
    assert login.status == "fail" and "App passwords" in login.fix


def test_bluesky_bot_label(bsky_network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Warned with the fix until the profile carries the label (as `run` adds it), then passed."""
    account = new_account(bsky_network)
    monkeypatch.setenv(ENV_BLUESKY_PASSWORD, account["password"])
    target = (bsky_network.pds_url, account["handle"])
    off = by_name(write_config(tmp_path, bluesky=target, bluesky_extra="set_bot_label = false"))
    label = off["bluesky bot label"]
    assert label.status == "warn" and "set_bot_label = true" in label.fix
    config = write_config(tmp_path, bluesky=target)
    label = by_name(config)["bluesky bot label"]
    assert label.status == "warn" and "numpolville run" in label.fix
    store = Store(tmp_path / "data" / "db.sqlite")
    try:
        BlueskyAdapter(load(config), store).connect()
    finally:
        store.close()
    assert by_name(config)["bluesky bot label"].status == "pass"


def test_missing_token_names_the_variable(mastodon_server, tmp_path: Path) -> None:
    check = by_name(write_config(tmp_path, mastodon_server.base_url))["mastodon token"]
    assert check.status == "fail" and ENV_MASTODON_TOKEN in check.fix
