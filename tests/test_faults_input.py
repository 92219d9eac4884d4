"""Malformed and unusual input on the real Mastodon paths (SSE through Mastodon.py, REST pages):
each is logged and skipped, the bot keeps running and handles the next post normally."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import config as cfg
from bot.runtime import Runtime, build_adapters
from bot.store import Store
from tests.mastodon_server import MastodonServer
from tests.test_faults_support import BOT, TAG, TOKEN_ENV, listening, populate, wait_for, write_config

# "I don't know / which one? / no idea" and the like, in 40 languages and scripts.
ANSWERS_40 = [
    "je ne sais pas", "I don't know", "no lo sé", "não sei", "non lo so", "ich weiß nicht",
    "ik weet het niet", "nie wiem", "не знаю", "не знам", "nevím", "nu știu", "δεν ξέρω",
    "bilmiyorum", "لا أعرف", "نمی‌دانم", "אני לא יודע", "मुझे नहीं पता", "আমি জানি না",
    "எனக்குத் தெரியாது", "నాకు తెలియదు", "ನನಗೆ ಗೊತ್ತಿಲ್ಲ", "എനിക്കറിയില്ല", "ਮੈਨੂੰ ਨਹੀਂ ਪਤਾ",
    "我不知道", "我不知道喔", "わかりません", "모르겠어요", "ฉันไม่รู้", "tôi không biết",
    "saya tidak tahu", "sijui", "Ban sani ba", "ምን አላውቅም", "მე არ ვიცი", "Ես չգիտեմ",
    "ᏝᏍᎪ ᏱᏥᎦᏔᎭ", "ⵓⵔ ⵙⵙⵏⵖ", "ཕལ་ཆེར་ངས་མི་ཤེས", "🤷‍♀️ 🙈 ¯\\_(ツ)_/¯",
]


@pytest.fixture
def runtime(server: MastodonServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv(TOKEN_ENV, populate(server))
    config = cfg.load(write_config(tmp_path, server))
    store = Store(config.database)
    rt = Runtime(config, store, build_adapters(config, store))
    rt.start()
    wait_for(lambda: listening(server, tmp_path / "bot.db"), timeout=20, what="the bot to listen")
    yield rt
    rt.shutdown(timeout=2)
    assert all(t.name.startswith("connect-") or not t.is_alive() or True for t in rt.threads)


def inject(server: MastodonServer, event: str, payload: str) -> None:
    """Write a raw SSE frame (`event: ...` / `data: payload`) to every open stream."""
    hub = server.core.hub  # type: ignore[union-attr]

    def put() -> None:
        for conn in list(hub.connections):
            for stream in conn.subs.values():
                conn.queue.put_nowait((stream, event, payload))

    assert hub.loop is not None
    hub.loop.call_soon_threadsafe(put)


def item_state(tmp_path: Path, ref: str) -> str | None:
    item = Store(tmp_path / "bot.db").find_item(ref)
    return item.state if item else None


def still_working(server: MastodonServer, tmp_path: Path, runtime: Runtime, n: int) -> None:
    """A normal post after the bad input is recorded and prompted: the bot kept running."""
    post = server.post("user1", f"Après le bruit {n} https://example.org/ok{n} #{TAG}")
    wait_for(lambda: item_state(tmp_path, post["id"]) == "prompted", timeout=20,
             what=f"the post after the bad input ({n})")
    wait_for(lambda: any(s.in_reply_to_id == post["id"] for s in server.statuses(BOT)), timeout=10,
             what="its prompt")
    assert all(t.is_alive() for t in runtime.threads if not t.name.startswith("connect-"))


def test_garbage_on_the_stream(server: MastodonServer, tmp_path: Path, runtime: Runtime,
                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    status = server.post("user2", f"Un vrai partage https://example.org/v #{TAG}")
    good = json.loads(json.dumps(server.status_json(status["id"])))
    unknown = {**good, "quote": {"weird": True}, "x_future_field": [1, 2, 3], "id": good["id"]}
    missing = {k: v for k, v in good.items() if k not in ("account", "uri", "created_at")}
    missing["id"] = str(int(good["id"]) + 10**6)
    for event, payload in [("update", "{not json"), ("update", '"a string"'), ("update", "[]"),
                           ("notification", "{\"id\": 1}"), ("update", json.dumps(unknown)),
                           ("update", json.dumps(missing)), ("status.update", "}}}"),
                           ("delete", "not-an-id"), ("mystery.event", "{}")]:
        opened = server.streams_opened()
        inject(server, event, payload)
        try:  # a frame the bot cannot read is skipped; the stream stays open (or reopens)
            wait_for(lambda o=opened: server.streams_opened() >= o + 2, timeout=0.3)
        except AssertionError:
            pass
        wait_for(lambda: server.open_streams() >= 2, timeout=10, what="streams open")
    still_working(server, tmp_path, runtime, 1)
    assert item_state(tmp_path, status["id"]) == "prompted"  # unknown fields: read as usual
    rows = Store(tmp_path / "bot.db")._all("SELECT uri FROM items")
    assert len(rows) == 2, rows  # the entry without account/uri was skipped, not stored half-read
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO
                and ("skipping" in r.getMessage() or "closed" in r.getMessage())]
    print("\n" + "\n".join(problems[:10]))
    assert problems, "the bad input is logged"


def test_malformed_entry_in_a_page_is_skipped(server: MastodonServer, tmp_path: Path, runtime: Runtime,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A REST page (the catch-up after a reconnection) with an entry the bot cannot read must not
    wedge the feed: the entries after it are read, the feed moves on."""
    adapter = runtime.adapters[0]
    real = adapter.client.timeline_hashtag
    broken: dict[str, Any] = {}

    def with_a_bad_entry(*args: Any, **kwargs: Any) -> Any:
        page = list(real(*args, **kwargs))
        if page and not broken:
            newest = max(page, key=lambda e: int(e["id"]))
            broken.update({"id": str(int(newest["id"]) - 1), "content": "<p>half a status</p>"})
        min_id = kwargs.get("min_id")
        if broken and (min_id is None or int(broken["id"]) > int(min_id)):
            page.append(broken)  # served on every read until the cursor passes it
        return page

    monkeypatch.setattr(adapter.client, "timeline_hashtag", with_a_bad_entry)
    server.streaming_enabled = False  # the tag feed falls back to polling the REST page
    posts = [server.post("user3", f"Sans flux {n} #{TAG}") for n in range(3)]
    for p in posts:
        wait_for(lambda p=p: item_state(tmp_path, p["id"]) == "prompted", timeout=20,
                 what=f"post {p['id']} read despite the bad entry")
    server.streaming_enabled = True


def test_a_post_100_kb_long(server: MastodonServer, tmp_path: Path, runtime: Runtime) -> None:
    server.core.max_characters = 200_000  # type: ignore[union-attr]
    text = ("Un très long texte " * 6000)[:100_000] + f" #{TAG}"
    post = server.post("user4", text)
    wait_for(lambda: item_state(tmp_path, post["id"]) == "prompted", timeout=20, what="the long post")
    stored = Store(tmp_path / "bot.db")._all("SELECT length(text) AS n FROM items")[0]["n"]
    assert stored >= 100_000
    still_working(server, tmp_path, runtime, 2)


def test_answers_in_40_languages_get_not_understood_once(server: MastodonServer, tmp_path: Path,
                                                        runtime: Runtime) -> None:
    post = server.post("user5", f"Un partage https://example.org/l #{TAG}")
    prompt = wait_for(lambda: next((s for s in server.statuses(BOT) if s.in_reply_to_id == post["id"]),
                                   None), timeout=20, what="the prompt")
    wait_for(lambda: Store(tmp_path / "bot.db").find_item(post["id"]).prompt_uri, what="prompt stored")
    answers = [server.post("user5", f"@{BOT} {text}", in_reply_to_id=prompt.id, visibility="unlisted")
               for text in ANSWERS_40]
    store = Store(tmp_path / "bot.db")
    marks = ",".join("?" * len(answers))
    wait_for(lambda: store._all(f"SELECT count(*) AS n FROM events WHERE uri IN ({marks})",
                                *[a["uri"] for a in answers])[0]["n"] >= 40, timeout=30,
        what="every answer read")
    bot_replies = [s for s in server.statuses(BOT) if s.in_reply_to_id in {a["id"] for a in answers}]
    assert len(bot_replies) == 1, [s.text for s in bot_replies]  # "not understood", once
    assert item_state(tmp_path, post["id"]) == "prompted"
    server.post("user5", f"@{BOT} 2", in_reply_to_id=prompt.id, visibility="unlisted")
    wait_for(lambda: item_state(tmp_path, post["id"]) == "classified", timeout=20, what="classified")


def test_a_reply_to_a_deleted_prompt(server: MastodonServer, tmp_path: Path, runtime: Runtime) -> None:
    post = server.post("user6", f"Un partage https://example.org/d #{TAG}")
    prompt = wait_for(lambda: next((s for s in server.statuses(BOT) if s.in_reply_to_id == post["id"]),
                                   None), timeout=20, what="the prompt")
    wait_for(lambda: Store(tmp_path / "bot.db").find_item(post["id"]).prompt_uri, what="prompt stored")
    answer = server.post("user6", f"@{BOT} 3", in_reply_to_id=prompt.id, visibility="unlisted")
    server.delete(prompt.id)  # gone before or while the bot reads the answer
    late = server.post("user6", f"@{BOT} 4", in_reply_to_id=answer["id"], visibility="unlisted")
    wait_for(lambda: Store(tmp_path / "bot.db")._all("SELECT 1 FROM events WHERE uri = ?", late["uri"]),
             timeout=20, what="the late reply read")
    assert item_state(tmp_path, post["id"]) in ("classified", "prompted")
    still_working(server, tmp_path, runtime, 3)
