"""The weekly digest published as a Mastodon thread, once, through the real adapter."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.digest import build_digest, period_from_args, publish_digest
from bot.mastodon import MastodonAdapter
from bot.store import Store
from tests.mastodon_server import MastodonServer
from tests.test_mastodon_adapter import Bot, bot, wait_for, world  # noqa: F401 (fixtures)


def test_digest_thread_is_posted_once(bot: Bot, world: MastodonServer, tmp_path: Path) -> None:  # noqa: F811
    first = world.post("alice", "Un atelier numérique #numpolville #projet https://example.org/atelier")
    wait_for(lambda: bot.item(first["id"]), what="the item")
    bot.stop()
    runtime_config = bot.make().config
    store = Store(bot.store.path)
    adapter = MastodonAdapter(runtime_config, store)
    adapter.connect()
    today = datetime.now(timezone.utc)
    period = period_from_args(now=today, tz_name="Europe/Paris",
                              since=(today - timedelta(days=2)).date().isoformat())
    digest = build_digest(store, runtime_config, period)
    posted = publish_digest(store, runtime_config, [adapter], digest)
    thread = [s for s in world.statuses("numpolvillebot") if s.visibility == "public"]
    assert posted["mastodon"] == [s.id for s in thread] and thread
    assert all(len(s.text) <= 500 for s in thread)
    assert "atelier" in " ".join(s.text for s in thread).lower()
    for prev, nxt in zip(thread, thread[1:], strict=False):
        assert nxt.in_reply_to_id == prev.id
    # Again (a restart, a second --post): nothing new on the server.
    assert publish_digest(store, runtime_config, [adapter], digest) == {}
    assert len([s for s in world.statuses("numpolvillebot") if s.visibility == "public"]) == len(thread)
    adapter.close()
