"""Servers that stream over WebSocket only (GoToSocial does): the bot still streams, live."""

import logging
from pathlib import Path

import pytest

from tests.mastodon_server import MastodonServer
from tests.test_mastodon_adapter import make_bot, prompt_and_answer, wait_for, world  # noqa: F401


def test_websocket_when_sse_is_refused(world: MastodonServer, tmp_path: Path,  # noqa: F811
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    world.faults.sse_enabled = False
    b = make_bot(world, tmp_path, world.world.numpolville_token).start(streams=2)
    try:
        status, _ = prompt_and_answer(b, world, "alice", "2")
        wait_for(lambda: b.item(status["id"])["category"] == "contexte", what="the classification")
        assert "trying WebSocket" in caplog.text and "no stream" not in caplog.text
        modes = {s["name"]: s["mode"] for s in b.store.health()["sources"]}
        assert modes == {"tag": "streaming", "mentions": "streaming"}
        assert world.open_streams() == 2  # SSE is refused here: both are WebSocket connections
    finally:
        b.stop()
