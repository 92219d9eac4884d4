"""End to end: the real Runtime with the Mastodon adapter, against the local Mastodon-API server,
over real HTTP and SSE (Mastodon.py is never patched)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.config import parse  # noqa: E402
from bot.runtime import Runtime, build_adapters  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.mastodon_server import MastodonServer  # noqa: E402
from tests.mastodon_server.pytest_plugin import federated_servers, mastodon_server  # noqa: E402,F401

TAG = "numpolville"


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Bot:
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
            self.runtime = None

    def items(self) -> dict[str, dict[str, Any]]:
        return {row["ref"]: row for row in self.store.items()}

    def item(self, ref: str) -> dict[str, Any] | None:
        return self.items().get(ref)

    def prompts(self) -> list[Any]:
        """The bot's replies on the server (its prompts and other replies)."""
        return [s for s in self.server.statuses("numpolvillebot") if s.in_reply_to_id]


def make_bot(server: MastodonServer, tmp_path: Path, token: str, **mastodon: Any) -> Bot:
    store = Store(tmp_path / "bot.db")
    raw = {"hashtag": TAG, "language": "fr",
           "mastodon": {"enabled": True, "api_base_url": server.base_url, "access_token": token,
                        "poll_interval": 0.2, **mastodon},
           "policy": {"prompt": "followers", "acknowledge": "favourite"}}
    config = parse(raw)

    def make() -> Runtime:
        return Runtime(config, store, build_adapters(config, store))

    return Bot(server, store, None, make)


@pytest.fixture
def world(mastodon_server: MastodonServer) -> MastodonServer:  # noqa: F811
    s = mastodon_server
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
