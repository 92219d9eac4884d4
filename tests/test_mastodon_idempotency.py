"""A prompt or reply retried after Mastodon forgot its Idempotency-Key (an hour) is found in the
post's thread instead of being posted twice.

The real Runtime and adapter against the local Mastodon-API server, whose keys expire at once here
(`idempotency_ttl=0`): every retry in these tests comes "more than an hour" after the first call.
A crash between the call and the intent being marked done is played by losing the result of the
first call of each effect (it reached the server; the runtime retries it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse
from bot.model import Action, Prompt, Reply
from bot.runtime import Runtime, build_adapters
from bot.store import Store
from tests.mastodon_server import MastodonServer
from tests.mastodon_server.state import Status
from tests.test_faults_support import BOT, TAG, listening, populate, query, wait_for

LONG_AGO = datetime.now(UTC) - timedelta(hours=2)  # past KEY_SAFE_AGE, and Mastodon's hour
CONTEXT = r"^/api/v1/statuses/\d+/context$"


@pytest.fixture
def server() -> Iterator[MastodonServer]:
    with MastodonServer(heartbeat=0.5, rate_limit=100_000, idempotency_ttl=0.0) as s:
        s.world.numpolville_token = populate(s)  # type: ignore[attr-defined]
        yield s


@pytest.fixture
def start_bot(server: MastodonServer, tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Starts the bot (policy keys as keywords); `lose` loses the first result of every effect of
    those kinds. Returns the database path; every bot started is stopped after the test."""
    runtimes: list[Runtime] = []

    def start_one(lose: tuple[type, ...] = (), **policy: Any) -> Path:
        runtimes.append(start(server, tmp_path, lose, policy))
        return tmp_path / "bot.db"

    yield start_one
    for runtime in runtimes:
        runtime.shutdown(timeout=2)
        runtime.store.close()


def start(server: MastodonServer, tmp_path: Path, lose: tuple[type, ...],
          policy: dict[str, Any]) -> Runtime:
    config = parse({"hashtag": TAG, "language": "fr", "database": str(tmp_path / "bot.db"),
                    "mastodon": {"enabled": True, "api_base_url": server.base_url,
                                 "access_token": server.world.numpolville_token,  # type: ignore[attr-defined]
                                 "poll_interval": 0.2},
                    "policy": {"prompt": "followers", "acknowledge": "favourite", **policy}})
    store = Store(config.database)
    runtime = Runtime(config, store, build_adapters(config, store))
    adapter, lost = runtime.adapters[0], set[Action]()
    perform = adapter.perform

    def crash_after_the_call(action: Action) -> str | None:
        result = perform(action)
        if isinstance(action, lose) and action not in lost:
            lost.add(action)
            raise ConnectionError("the process died before writing the result down")
        return result

    adapter.perform = crash_after_the_call  # type: ignore[method-assign]
    runtime.start()
    wait_for(lambda: listening(server, config.database), timeout=20, what="the bot to listen")
    return runtime


def bot_replies(server: MastodonServer, status_id: str) -> list[Status]:
    return [s for s in server.statuses(BOT) if s.in_reply_to_id == status_id]


def settled_intent(db: Path, kind: str, uri: str) -> tuple[Any, ...]:
    """(state, result, attempts) of the intent, once it is no longer pending."""
    sql = "SELECT state, result, attempts FROM intents WHERE kind = ? AND uri = ? AND state != 'pending'"
    return wait_for(lambda: next(iter(query(db, sql, kind, uri)), None), timeout=15,
                    what=f"the {kind} intent of {uri} to settle")


def tagged(server: MastodonServer, created_at: datetime | None = LONG_AGO) -> dict[str, Any]:
    """A follower's tagged post, backdated unless `created_at` is None."""
    return server.post("user1", f"Un rapport https://example.org/r #{TAG}", created_at=created_at)


def answered(server: MastodonServer, db: Path, text: str) -> dict[str, Any]:
    """An old tagged post, its prompt, and the author's (old) answer to it."""
    post = tagged(server)
    assert settled_intent(db, "prompt", post["uri"])[0] == "done"
    [prompt] = bot_replies(server, post["id"])
    return server.post("user1", f"@{BOT} {text}", in_reply_to_id=prompt.id, visibility="unlisted",
                       created_at=LONG_AGO)


def test_a_prompt_retried_past_the_key_is_found_not_posted_again(
        start_bot: Callable[..., Path], server: MastodonServer) -> None:
    db = start_bot(lose=(Prompt,))
    post = tagged(server)
    state, result, attempts = settled_intent(db, "prompt", post["uri"])
    [prompt] = bot_replies(server, post["id"])
    assert (state, result, attempts) == ("done", f"{prompt.uri} {prompt.id}", 2)
    item = Store(db).find_item(post["id"])
    assert item is not None and item.prompt_uri == prompt.uri


def test_without_the_thread_check_the_server_posts_the_retry_again(
        start_bot: Callable[..., Path], server: MastodonServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same, with the post taken for fresh; the expired key lets the retry in."""
    import bot.mastodon.adapter

    monkeypatch.setattr(bot.mastodon.adapter, "KEY_SAFE_AGE", timedelta(days=365))
    db = start_bot(lose=(Prompt,))
    post = tagged(server)
    settled_intent(db, "prompt", post["uri"])
    assert len(bot_replies(server, post["id"])) == 2


def test_a_reply_retried_past_the_key_is_found_not_posted_again(
        start_bot: Callable[..., Path], server: MastodonServer) -> None:
    db = start_bot(lose=(Reply,), acknowledge="reply")
    answer = answered(server, db, "2")
    state, result, attempts = settled_intent(db, "reply", answer["uri"])
    [thanks] = bot_replies(server, answer["id"])
    assert (state, result, attempts) == ("done", thanks.id, 2)
    assert "Classé dans « Contexte »" in thanks.text


def test_a_reply_of_another_kind_is_not_taken_for_it(
        start_bot: Callable[..., Path], server: MastodonServer) -> None:
    """An unclear answer gets "not understood"; edited into a category, it gets "thanks" too
    (the bot follows the author, so the edit reaches its home timeline)."""
    server.follow(BOT, "user1")
    db = start_bot(lose=(Reply,), acknowledge="reply")
    answer = answered(server, db, "bof")
    assert settled_intent(db, "reply", answer["uri"])[0] == "done"
    server.edit(answer["id"], f"@{BOT} 2")
    wait_for(lambda: query(db, "SELECT count(*) FROM intents WHERE kind = 'reply' AND state = 'done'")
             == [(2,)], timeout=15, what="the thanks")
    texts = [s.text for s in bot_replies(server, answer["id"])]
    assert len(texts) == 2 and "compris" in texts[0] and "Classé" in texts[1], texts


def test_a_fresh_post_costs_no_thread_request(start_bot: Callable[..., Path], server: MastodonServer) -> None:
    db = start_bot()
    post = tagged(server, created_at=None)
    assert settled_intent(db, "prompt", post["uri"])[0] == "done"
    assert len(bot_replies(server, post["id"])) == 1
    assert server.requests(path_regex=CONTEXT) == []


def test_an_old_post_without_a_prompt_gets_exactly_one(
        start_bot: Callable[..., Path], server: MastodonServer) -> None:
    db = start_bot()
    post = tagged(server)
    state, result, _ = settled_intent(db, "prompt", post["uri"])
    [prompt] = bot_replies(server, post["id"])
    assert (state, result) == ("done", f"{prompt.uri} {prompt.id}")
    [thread_read] = server.requests(path_regex=CONTEXT)
    assert thread_read["path"] == f"/api/v1/statuses/{post['id']}/context"


def test_an_old_post_deleted_before_its_prompt_gives_the_prompt_up(
        start_bot: Callable[..., Path], server: MastodonServer) -> None:
    """Deleted while the thread is read: the thread answers 404, the effect is moot, nothing is
    posted and the intent is not retried."""
    db = start_bot()
    server.delay(CONTEXT, 1.0)
    post = tagged(server)
    wait_for(lambda: query(db, "SELECT 1 FROM intents WHERE kind = 'prompt'"), what="the prompt intent")
    server.delete(post["id"])
    assert settled_intent(db, "prompt", post["uri"])[0] == "failed"
    assert bot_replies(server, post["id"]) == []
    assert server.requests(path_regex=CONTEXT, status=404)
