"""Configuration: defaults, the shipped example, environment secrets and clear errors."""

from pathlib import Path

import pytest

from bot import config as cfg
from bot.config import ConfigError, check_ready, load, parse

EXAMPLE = Path(__file__).parent.parent / "config" / "numpolville.example.toml"


def test_defaults_follow_the_seed_text() -> None:
    c = parse({})
    assert c.hashtag == "numpolville" and c.language == "fr"
    assert [(k.key, k.number) for k in c.categories] == [
        ("projet", 1), ("contexte", 2), ("initiative", 3), ("prospective", 4)]
    assert c.policy.prompt == "followers" and c.policy.boost == "classified"
    assert c.policy.prompt_timeout_hours == 48 and c.policy.max_prompts_per_author_per_day == 5


def test_the_example_file_is_valid_and_matches_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cfg.ENV_MASTODON_TOKEN, raising=False)
    example = load(EXAMPLE)
    defaults = parse({})
    assert example.categories == defaults.categories
    assert example.policy == defaults.policy
    assert example.hashtag == defaults.hashtag
    assert example.bluesky.set_bot_label == defaults.bluesky.set_bot_label is True


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cfg.ENV_MASTODON_TOKEN, "tok-from-env")
    monkeypatch.setenv(cfg.ENV_BLUESKY_PASSWORD, "pw-from-env")
    c = parse({})
    assert c.mastodon.access_token == "tok-from-env" and c.bluesky.password == "pw-from-env"
    assert "tok-from-env" not in repr(c)


def test_a_token_in_the_file_works_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cfg.ENV_MASTODON_TOKEN, raising=False)
    c = parse({"mastodon": {"access_token": "in-file"}})
    assert c.mastodon.access_token == "in-file"
    assert any(cfg.ENV_MASTODON_TOKEN in w for w in c.warnings)


@pytest.mark.parametrize("raw,key,expected", [
    ({"language": "de"}, "language", '"fr", "en"'),
    ({"hashtag": "two words"}, "hashtag", "letters"),
    ({"policy": {"prompt": "sometimes"}}, "policy.prompt", '"followers"'),
    ({"policy": {"prompt_timeout_hours": "soon"}}, "policy.prompt_timeout_hours", "number"),
    ({"mastodon": {"enabled": "yes"}}, "mastodon.enabled", "true or false"),
    ({"bluesky": {"source": "rss"}}, "bluesky.source", '"jetstream"'),
    ({"bluesky": {"set_bot_label": "yes"}}, "bluesky.set_bot_label", "true or false"),
    ({"categories": [{"key": "a", "number": 1}, {"key": "a", "number": 2}]}, "categories", "distinct"),
    ({"texts": {"fr": {"bonjour": "x"}}}, "texts.fr.bonjour", "prompt"),
])
def test_errors_name_the_file_the_key_and_what_is_expected(raw: dict, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(raw, "config/x.toml")
    assert e.value.key == key and expected in e.value.expected
    assert str(e.value).startswith("config/x.toml: `" + key)


def test_a_missing_token_for_an_enabled_network_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cfg.ENV_MASTODON_TOKEN, raising=False)
    c = parse({"mastodon": {"enabled": True, "api_base_url": "https://x.test"}})
    with pytest.raises(ConfigError, match=cfg.ENV_MASTODON_TOKEN):
        check_ready(c)


def test_config_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "c.toml"
    f.write_text('hashtag = "autre"\n')
    monkeypatch.setenv(cfg.ENV_CONFIG, str(f))
    assert load().hashtag == "autre"
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")
    f.write_text("hashtag = [")
    with pytest.raises(ConfigError, match="valid TOML"):
        load(f)


def test_texts_are_configurable_and_fill_placeholders() -> None:
    c = parse({"language": "en", "texts": {"en": {"thanks": "Filed: {category} #{hashtag}"}}})
    assert c.text("thanks", category="Context") == "Filed: Context #numpolville"
    assert "{categories}" not in parse({}).text("prompt", categories="1 projet")


def test_digest_schedule_and_timezone_are_checked_at_load() -> None:
    assert parse({"digest": {"schedule": "mon 09:00"}}).digest.schedule == "mon 09:00"
    with pytest.raises(ConfigError, match="digest.schedule"):
        parse({"digest": {"schedule": "lundi matin"}})
    with pytest.raises(ConfigError, match="digest.timezone"):
        parse({"digest": {"timezone": "Mars/Olympus"}})


def test_a_env_file_others_can_read_is_a_problem(tmp_path: Path) -> None:
    from bot.config import env_file_problem

    env = tmp_path / ".env"
    assert env_file_problem(env) == ""  # none: nothing to say
    env.write_text("NUMPOLVILLE_MASTODON_TOKEN=x\n")
    for mode, bad in ((0o600, False), (0o400, False), (0o640, True), (0o644, True), (0o604, True)):
        env.chmod(mode)
        assert bool(env_file_problem(env)) is bad, oct(mode)
    assert f"chmod 600 {env}" in env_file_problem(env) and "0604" in env_file_problem(env)
