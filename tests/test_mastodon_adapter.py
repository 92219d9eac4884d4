"""End to end: the real Runtime with the Mastodon adapter, against the local Mastodon-API server,
over real HTTP and SSE (Mastodon.py is never patched)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.config import parse  # noqa: E402
from bot.runtime import Runtime, build_adapters  # noqa: E402
from bot.store import Store  # noqa: E402
from tests import test_faults_support as support  # noqa: E402
from tests.mastodon_server import MastodonServer  # noqa: E402
from tests.mastodon_server.pytest_plugin import (  # noqa: E402,F401
    federated_servers,
    flavoured_server,
    mastodon_server,
)

TAG = "numpolville"


wait_for = partial(support.wait_for, timeout=5.0, interval=0.02)  # one process: answers come fast


@dataclass
class Bot:
    """The bot under test. `store` is a second connection to its database, as `numpolville export`
    would open: the test thread never shares the bot's own connection."""

    server: MastodonServer
    store: Store
    runtime: Runtime | None
    make: Callable[[], Runtime]

    def start(self, streams: int = 2) -> Bot:
        self.runtime = self.make()
        self.runtime.start()
        wait_for(lambda: all(self.store.cursor("mastodon", k) is not None
                             for k in ("tag", "notifications"))
                 and self.server.open_streams() >= streams, what="the bot to listen")
        return self

    def stop(self) -> None:
        if self.runtime is not None:
            self.runtime.shutdown(timeout=2.0)
            self.runtime.store.close()
            self.runtime = None

    def items(self) -> dict[str, dict[str, Any]]:
        return {row["ref"]: row for row in self.store.items()}

    def item(self, ref: str) -> dict[str, Any] | None:
        return self.items().get(ref)

    def prompts(self) -> list[Any]:
        """The bot's replies on the server (its prompts and other replies)."""
        return [s for s in self.server.statuses("numpolvillebot") if s.in_reply_to_id]


def make_bot(server: MastodonServer, tmp_path: Path, token: str, policy: dict[str, Any] | None = None,
             **mastodon: Any) -> Bot:
    path = tmp_path / "bot.db"
    raw = {"hashtag": TAG, "language": "fr",
           "mastodon": {"enabled": True, "api_base_url": server.base_url, "access_token": token,
                        "poll_interval": 0.2, **mastodon},
           "policy": {"prompt": "followers", "acknowledge": "favourite",
                      "max_prompts_per_author_per_day": 100, **(policy or {})}}
    config = parse(raw)

    def make() -> Runtime:
        store = Store(path)
        return Runtime(config, store, build_adapters(config, store))

    return Bot(server, Store(path), None, make)


@pytest.fixture
def world(flavoured_server: MastodonServer) -> MastodonServer:  # noqa: F811
    """Every scenario on every server family (tests/mastodon_server/flavours.py)."""
    return populate_world(flavoured_server)


def populate_world(s: MastodonServer) -> MastodonServer:
    """The bot's account (its token kept on the world), followers alice, bob and nadia (#NoBot),
    and carol, who does not follow it."""
    _, bot_token = s.create_account("numpolvillebot", note="Je range les partages #numpolville")
    s.world.numpolville_token = bot_token  # type: ignore[attr-defined]
    for name in ("alice", "bob", "carol"):
        s.create_account(name, note=f"{name}'s bio")
    s.create_account("nadia", note="Pas de robots ici #NoBot")
    for name in ("alice", "bob", "nadia"):
        s.follow(name, "numpolvillebot")
    return s


@pytest.fixture
def bot(world: MastodonServer, tmp_path: Path) -> Iterator[Bot]:
    b = make_bot(world, tmp_path, world.world.numpolville_token)  # type: ignore[attr-defined]
    b.start()
    yield b
    b.stop()


def reply_of(bot: Bot, status_id: str) -> Any:
    return next((s for s in bot.prompts() if s.in_reply_to_id == status_id), None)


# ---- the happy path ------------------------------------------------------------------------------

def test_follower_is_prompted_answers_and_is_boosted(bot: Bot, world: MastodonServer) -> None:
    started = time.monotonic()
    post = world.post("alice", f"Un rapport sur la ville https://example.org/rapport #{TAG}")
    prompt = wait_for(lambda: reply_of(bot, post["id"]), timeout=2.0, what="the prompt")
    latency = time.monotonic() - started
    logging.getLogger("test").info("prompt latency %.3f s", latency)
    assert "@alice" in prompt.text and "2\ufe0f\u20e3 Contexte" in prompt.text
    assert prompt.visibility == "unlisted"
    item = bot.item(post["id"])
    assert item and item["state"] == "prompted" and item["link"] == "https://example.org/rapport"
    wait_for(lambda: bot.item(post["id"])["prompt_uri"] == prompt.uri, what="the prompt to be stored")

    answer = world.post("alice", "@numpolvillebot 2", in_reply_to_id=prompt.id, visibility="unlisted")
    bot_id = world.account("numpolvillebot").id
    wait_for(lambda: (bot_id, post["id"]) in world.reblogs(), what="the boost")
    wait_for(lambda: (bot_id, answer["id"]) in world.favourites(), what="the favourite")
    item = wait_for(lambda: (i := bot.item(post["id"])) and i["boost_ref"] and i, what="boost stored")
    assert item["state"] == "classified" and item["category"] == "contexte"
    assert item["classified_by"] == "alice"
    print(f"prompt latency: {latency:.3f} s")


def prompt_and_answer(bot: Bot, world: MastodonServer, who: str, answer: str, **post: Any) -> tuple[Any, Any]:
    status = world.post(who, f"Lien https://example.org/{who} #{TAG}", **post)
    prompt = wait_for(lambda: reply_of(bot, status["id"]), what="the prompt")
    wait_for(lambda: bot.item(status["id"])["prompt_uri"] == prompt.uri, what="the prompt stored")
    return status, world.post(who, f"@numpolvillebot {answer}", in_reply_to_id=prompt.id,
                              visibility="unlisted")


def bot_id(world: MastodonServer) -> str:
    return world.account("numpolvillebot").id


def settle(bot: Bot, seconds: float = 0.5) -> None:
    """Let the bot act on what it has seen, then check that all intents get done (an intent
    left by a stopped run is completed after the restart, by its effect worker's own pace)."""
    time.sleep(seconds)
    wait_for(lambda: bot.store.pending_intents("mastodon") == [], timeout=10,
             what=lambda: f"the pending intents done: {bot.store.pending_intents('mastodon')}")


# ---- who is asked, what is boosted ---------------------------------------------------------------

def test_someone_else_answering_changes_nothing(bot: Bot, world: MastodonServer) -> None:
    post = world.post("alice", f"Un lien https://example.org/a #{TAG}")
    prompt = wait_for(lambda: reply_of(bot, post["id"]), what="the prompt")
    wait_for(lambda: bot.item(post["id"])["prompt_uri"] == prompt.uri, what="the prompt stored")
    world.post("bob", "@numpolvillebot @alice 1", in_reply_to_id=prompt.id)
    settle(bot)
    item = bot.item(post["id"])
    assert item["state"] == "prompted" and item["category"] is None and not item["boost_ref"]
    assert world.reblogs() == []


def test_non_follower_is_recorded_not_prompted(bot: Bot, world: MastodonServer) -> None:
    post = world.post("carol", f"Un lien https://example.org/c #{TAG}")
    wait_for(lambda: bot.item(post["id"]), what="the item")
    settle(bot)
    assert bot.item(post["id"])["state"] == "seen" and bot.prompts() == []


def test_nobot_author_is_never_prompted(bot: Bot, world: MastodonServer) -> None:
    post = world.post("nadia", f"Un lien https://example.org/n #{TAG}")
    tagged = world.post("alice", f"Témoin #{TAG}")  # seen after nadia's: the bot got that far
    wait_for(lambda: reply_of(bot, tagged["id"]), what="the witness prompt")
    settle(bot)
    assert reply_of(bot, post["id"]) is None and bot.item(post["id"]) is None


def test_private_post_is_never_boosted(bot: Bot, world: MastodonServer) -> None:
    status = world.post("alice", f"@numpolvillebot entre nous https://example.org/p #{TAG}",
                        visibility="private")
    prompt = wait_for(lambda: reply_of(bot, status["id"]), what="the prompt")
    assert prompt.visibility == "direct"
    wait_for(lambda: bot.item(status["id"])["prompt_uri"] == prompt.uri, what="the prompt stored")
    world.post("alice", "@numpolvillebot 1", in_reply_to_id=prompt.id, visibility="direct")
    wait_for(lambda: bot.item(status["id"])["state"] == "classified", what="the classification")
    settle(bot)
    assert bot.item(status["id"])["category"] == "projet" and world.reblogs() == []


def test_deleted_post_is_unboosted_and_marked_deleted(bot: Bot, world: MastodonServer) -> None:
    status, _ = prompt_and_answer(bot, world, "alice", "projet")
    wait_for(lambda: (bot_id(world), status["id"]) in world.reblogs(), what="the boost")
    wait_for(lambda: bot.item(status["id"])["boost_ref"], what="the boost stored")
    world.delete(status["id"])
    item = wait_for(lambda: (i := bot.item(status["id"])) and i["state"] == "deleted" and
                    not i["boost_ref"] and i, what="the item deleted and unboosted")
    assert item["deleted"] == 1
    assert (bot_id(world), status["id"]) not in world.reblogs()


def test_edit_removing_the_hashtag_withdraws(bot: Bot, world: MastodonServer) -> None:
    world.follow("numpolvillebot", "alice")  # edits reach the bot through its home timeline
    status, _ = prompt_and_answer(bot, world, "alice", "4")
    wait_for(lambda: bot.item(status["id"])["boost_ref"], what="the boost stored")
    world.edit(status["id"], "Finalement, rien à voir https://example.org/alice")
    wait_for(lambda: bot.item(status["id"])["state"] == "withdrawn", what="the withdrawal")
    wait_for(lambda: (bot_id(world), status["id"]) not in world.reblogs(), what="the unboost")


# ---- nothing lost, nothing repeated --------------------------------------------------------------

def burst(world: MastodonServer, n: int, start: int = 0, authors: tuple[str, ...] = ("alice", "bob"),
          during: dict[int, Callable[[], None]] | None = None) -> list[str]:
    ids = []
    for i in range(start, start + n):
        (during or {}).get(i, lambda: None)()
        ids.append(world.post(authors[i % len(authors)], f"Post {i} https://example.org/{i} #{TAG}")["id"])
    return ids


def assert_one_prompt_each(bot: Bot, ids: list[str], timeout: float = 15.0) -> None:
    wait_for(lambda: sum(1 for s in bot.prompts() if s.in_reply_to_id in ids) >= len(ids),
             timeout=timeout, what=f"{len(ids)} prompts")
    settle(bot, 0.3)
    replies = [s.in_reply_to_id for s in bot.prompts()]
    assert sorted(r for r in replies if r in ids) == sorted(ids), "exactly one prompt per post"
    items = bot.items()
    assert all(items[i]["state"] == "prompted" and items[i]["prompt_uri"] for i in ids)


def test_restart_in_the_middle_of_a_burst(bot: Bot, world: MastodonServer) -> None:
    ids = burst(world, 50, during={15: bot.stop, 35: bot.start})
    assert_one_prompt_each(bot, ids)
    assert len(bot.items()) == 50


def test_dropped_stream_mid_burst_loses_nothing(bot: Bot, world: MastodonServer) -> None:
    ids = burst(world, 30, during={10: world.drop_streams, 20: world.drop_streams})
    assert_one_prompt_each(bot, ids)


def test_polling_when_streaming_is_off_in_config(world: MastodonServer, tmp_path: Path) -> None:
    b = make_bot(world, tmp_path, world.world.numpolville_token, streaming=False).start(streams=0)
    try:
        status, answer = prompt_and_answer(b, world, "alice", "contexte")
        wait_for(lambda: b.item(status["id"])["category"] == "contexte", what="the classification")
        assert world.open_streams() == 0
    finally:
        b.stop()


def test_polling_when_the_server_has_no_streaming(world: MastodonServer, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    world.streaming_enabled = False
    b = make_bot(world, tmp_path, world.world.numpolville_token).start(streams=0)
    try:
        status, _ = prompt_and_answer(b, world, "alice", "2")
        wait_for(lambda: b.item(status["id"])["category"] == "contexte", what="the classification")
        assert "the stream could not be opened" in caplog.text and "polling every 0.2 s" in caplog.text
        assert world.open_streams() == 0
        reasons = {s["name"]: s["reason"] for s in b.store.health()["sources"]}
        assert "could not be opened (InvalidStatus" in reasons["tag"], reasons
    finally:
        b.stop()


def test_polling_the_tag_when_the_server_has_no_hashtag_stream(world: MastodonServer, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    world.hashtag_stream_enabled = False
    b = make_bot(world, tmp_path, world.world.numpolville_token).start(streams=1)  # mentions stream
    try:
        status, _ = prompt_and_answer(b, world, "alice", "1")
        wait_for(lambda: b.item(status["id"])["category"] == "projet", what="the classification")
        assert "mastodon tag: the server refused the subscription" in caplog.text
        wait_for(lambda: world.open_streams() == 1, what="the refused stream closed, mentions open")
    finally:
        b.stop()


# ---- a polite client ------------------------------------------------------------------------------

def test_429_and_5xx_lose_no_action_and_log_no_error(bot: Bot, world: MastodonServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    world.force_status(r"^/api/v1/statuses$", 429, count=2, retry_after=1)
    world.force_status(r"/reblog$", 503, count=2)
    world.force_status(r"/favourite$", 500, count=1)
    status, answer = prompt_and_answer(bot, world, "alice", "2")
    wait_for(lambda: (bot_id(world), status["id"]) in world.reblogs(), timeout=10, what="the boost")
    wait_for(lambda: (bot_id(world), answer["id"]) in world.favourites(), timeout=10, what="the favourite")
    assert len(world.requests("POST", r"^/api/v1/statuses$", status=429)) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if "429" in r.getMessage() and r.levelno >= logging.WARNING]
    assert world.world.numpolville_token not in caplog.text  # type: ignore[attr-defined]


def test_rate_limit_window_is_waited_out(bot: Bot, world: MastodonServer,
                                         caplog: pytest.LogCaptureFixture) -> None:
    if world.flavour.name != "mastodon":
        pytest.skip("the rate-limit headers are Mastodon's; one family is enough for 12 s of waiting")
    world.set_rate_limit(8, period=2.0)
    ids = burst(world, 25)
    assert_one_prompt_each(bot, ids, timeout=20)
    assert world.requests(status=429), "the burst did hit the limit"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- other servers -------------------------------------------------------------------------------

def test_discovered_post_is_resolved_at_home_and_recorded_once(federated_servers: Any,  # noqa: F811
                                                              tmp_path: Path) -> None:
    home, piaille = federated_servers
    home.known_remote(piaille, auto_federate=True)  # also reaches the home tag stream
    _, token = home.create_account("numpolvillebot")
    piaille.create_account("zoe")
    b = make_bot(home, tmp_path, token, discovery_instances=[piaille.base_url]).start()
    try:
        wait_for(lambda: b.store.cursor("mastodon", f"discovery:{piaille.base_url}") is not None,
                 what="the discovery cursor")
        origin = piaille.post("zoe", f"Vu d'ailleurs https://example.org/z #{TAG}")
        wait_for(lambda: [i for i in b.items().values() if i["uri"] == origin["uri"]], what="the item")
        time.sleep(1.0)  # several polls of piaille after the home stream saw it
        found = [i for i in b.items().values() if i["uri"] == origin["uri"]]
        assert len(found) == 1 and found[0]["ref"] != origin["id"]
        assert found[0]["author_handle"] == "zoe@piaille.test"
    finally:
        b.stop()


def test_discovery_alone_resolves_at_home(federated_servers: Any, tmp_path: Path) -> None:  # noqa: F811
    home, piaille = federated_servers
    _, token = home.create_account("numpolvillebot")
    piaille.create_account("zoe")
    b = make_bot(home, tmp_path, token, discovery_instances=[piaille.base_url]).start()
    try:
        wait_for(lambda: b.store.cursor("mastodon", f"discovery:{piaille.base_url}") is not None,
                 what="the discovery cursor")
        origin = piaille.post("zoe", f"Seulement là-bas #{TAG}")
        item = wait_for(lambda: next((i for i in b.items().values() if i["uri"] == origin["uri"]), None),
                        what="the item")
        assert home.status_json(item["ref"])["uri"] == origin["uri"]
    finally:
        b.stop()
