"""`numpolville init` against the local servers: the Mastodon authorization-code flow as a person
goes through it (run, open the URL, paste the code), the Bluesky app-password check, the files it
writes (comments kept, .env 0600), and re-runs that keep what works."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from bot import setup_wizard as wiz
from bot.cli import app
from bot.config import ENV_BLUESKY_PASSWORD, ENV_MASTODON_TOKEN, parse

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "numpolville.example.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_MASTODON_TOKEN, raising=False)
    monkeypatch.delenv(ENV_BLUESKY_PASSWORD, raising=False)
    monkeypatch.chdir(tmp_path)


def authorize(url: str, username: str = "bot") -> str:
    """What the person does in the browser: log in as the bot and copy the code."""
    page = requests.get(url + "&username=" + username, timeout=10).text
    return re.search(r'class="oauth-code" readonly type="text" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def init(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["init", "--config", "config/numpolville.toml", "--non-interactive", *args])
    return result.exit_code, result.output


# ---- files ---------------------------------------------------------------------------------------

def test_toml_edits_keep_comments_and_stay_valid() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = wiz.set_toml_value(text, "mastodon", "enabled", True)
    text = wiz.set_toml_value(text, "mastodon", "api_base_url", 'https://m.example/"x"')
    text = wiz.set_toml_value(text, "bluesky", "app_view", "added")
    text = wiz.set_toml_value(text, "newsection", "key", "v")
    raw = tomllib.loads(text)
    assert raw["mastodon"]["enabled"] is True and raw["mastodon"]["api_base_url"] == 'https://m.example/"x"'
    assert raw["bluesky"]["app_view"] == "added" and raw["newsection"] == {"key": "v"}
    assert raw["categories"][0]["key"] == "projet"  # [[categories]] untouched
    assert "# The bot account's home server (example)." in text
    assert text.count("# ") == EXAMPLE.read_text(encoding="utf-8").count("# ")


def test_env_file_is_private_and_merged(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# mine\nOTHER=1\n", encoding="utf-8")
    wiz.write_env(env, {"A": "x", "OTHER": "2"})
    wiz.write_env(env, {"A": "y"})
    assert env.read_text(encoding="utf-8") == "# mine\nOTHER=2\nA=y\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert wiz.read_env(env) == {"OTHER": "2", "A": "y"}


def test_server_addresses() -> None:
    assert wiz.normalize_server("piaille.fr/") == "https://piaille.fr"
    assert wiz.normalize_server("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    with pytest.raises(wiz.InitError, match="https"):
        wiz.normalize_server("http://piaille.fr")


# ---- Mastodon ------------------------------------------------------------------------------------

def test_mastodon_scripted_in_two_runs_then_kept(mastodon_server, tmp_path: Path) -> None:
    mastodon_server.create_account("bot")
    code, out = init("--no-bluesky", "--mastodon-server", mastodon_server.base_url)
    assert code == 2 and "--mastodon-code" in out  # a missing input: usage
    url = re.search(r"(http://\S+/oauth/authorize\?\S+)", out).group(1)  # type: ignore[union-attr]
    assert "write%3Astatuses" in url and "scope=read+" not in url  # granular scopes only

    code, out = init("--no-bluesky", "--mastodon-code", authorize(url))
    assert code == 0, out
    env = wiz.read_env(Path(".env"))
    token = env[ENV_MASTODON_TOKEN]
    assert token not in out and env["NUMPOLVILLE_MASTODON_CLIENT_SECRET"] not in out
    assert stat.S_IMODE(Path(".env").stat().st_mode) == 0o600
    text = Path("config/numpolville.toml").read_text(encoding="utf-8")
    config = parse(tomllib.loads(text))
    assert config.mastodon.enabled and config.mastodon.api_base_url == mastodon_server.base_url
    assert not config.bluesky.enabled and "# Use the streaming API when the server offers it." in text
    assert mastodon_server.account("bot").bot  # flagged as a bot right away

    code, out = init("--no-bluesky")
    assert code == 0 and "saved token is accepted" in out
    assert len(mastodon_server.world.apps) == 1
    assert len(mastodon_server.requests("POST", r"^/oauth/token$")) == 1
    assert wiz.read_env(Path(".env"))[ENV_MASTODON_TOKEN] == token


def test_a_wrong_code_is_refused_without_traceback(mastodon_server) -> None:
    code, out = init("--no-bluesky", "--mastodon-server", mastodon_server.base_url, "--mastodon-code", "nope")
    assert code == 1 and "refused the authorization code" in out and "Traceback" not in out
    assert not Path("config/numpolville.toml").exists()


def test_unreachable_server_is_a_clear_error() -> None:
    code, out = init("--no-bluesky", "--mastodon-server", "http://127.0.0.1:9")
    assert code == 1 and "127.0.0.1:9" in out and "Traceback" not in out


# ---- both, interactively -------------------------------------------------------------------------

class Person:
    """Answers the rich prompts as a person would, following the printed instructions."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.said, self.asked = answers, [], []

    def ask(self, question: str, default: str = "", *, flag: str, password: bool = False) -> str:
        self.asked.append((question, default, password))
        if question == "Authorization code":
            url = re.search(r"(http://\S+/oauth/authorize\?\S+)", "\n".join(self.said)).group(1)  # type: ignore[union-attr]
            return authorize(url)
        return next((v for k, v in self.answers.items() if question.startswith(k)), default)

    def confirm(self, question: str, default: bool) -> bool:
        return True

    def say(self, text: str) -> None:
        self.said.append(text)


def test_interactive_setup_of_both_networks(mastodon_server, bsky_network, tmp_path: Path) -> None:
    mastodon_server.create_account("bot")
    bot = bsky_network.accounts["bot"]
    person = Person({"Server": mastodon_server.base_url, "Service": bsky_network.pds_url,
                     "Handle": bot["handle"], "App password": bot["password"]})
    opts = wiz.InitOptions(Path("config/numpolville.toml"))
    config = wiz.run(opts, person)
    assert config.mastodon.enabled and config.bluesky.enabled and config.bluesky.handle == bot["handle"]
    assert any("App passwords" in s for s in person.said)  # says where to create one
    assert ("App password", "", True) in person.asked  # not echoed
    assert wiz.read_env(Path(".env"))[ENV_BLUESKY_PASSWORD] == bot["password"]
    assert not any(bot["password"] in s for s in person.said)

    again = Person({})  # a re-run: every default is the saved value
    wiz.run(opts, again)
    assert ("App password", bot["password"], True) in again.asked
    assert any("saved token is accepted" in s for s in again.said)
    assert len(mastodon_server.world.apps) == 1


def test_wrong_bluesky_password_explains_app_passwords(bsky_network) -> None:
    code, out = init("--no-mastodon", "--bluesky-service", bsky_network.pds_url,
                     "--bluesky-handle", bsky_network.accounts["bot"]["handle"],
                     "--bluesky-password", "wrong-pass-word")
    assert code == 1 and "App passwords" in out and "wrong-pass-word" not in out
    assert not Path("config/numpolville.toml").exists()


def test_rich_prompts_rerun_with_the_saved_values(mastodon_server) -> None:
    """The real prompts: pressing Enter keeps the server and the still-valid token."""
    _, token = mastodon_server.create_account("bot")
    wiz.write_env(Path(".env"), {ENV_MASTODON_TOKEN: token})
    Path("config").mkdir()
    Path("config/numpolville.toml").write_text(
        f'[mastodon]\nenabled = true\napi_base_url = "{mastodon_server.base_url}"\n', encoding="utf-8")
    result = runner.invoke(app, ["init", "--config", "config/numpolville.toml"], input="\n\nn\n")
    assert result.exit_code == 0, result.output
    assert "saved token is accepted" in result.output and token not in result.output
    assert len(mastodon_server.world.apps) == 0
