"""The weekly "veille": a digest of what was shared, built from the store alone, rendered as a
page, a feed, a newsletter or a thread. Entry points for the CLI and the runtime:

- `period_from_args(now=..., tz_name=..., week=..., since=..., until=...)` -> Period
- `build_digest(store, config, period)` -> Digest
- `render(digest, config, fmt)` -> str, fmt in md | html | rss | atom | json
- `write_digest(store, config, fmt, out_path, period)` -> Path
- `publish_digest(store, config, adapters, digest)` -> {network: [refs]}
- `due_period(schedule, now, tz)` -> Period | None
- `publish_due(store, config, adapters, now)` -> {network: [refs]} (for the runtime's timer)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bot.config import Config
from bot.digest.build import Digest, Entry, Section, Sharer, build_digest, normalize_url
from bot.digest.period import Period, due_period, last_full_week, period_from_args, zone
from bot.digest.publish import publish_digest, thread_texts
from bot.digest.render import FORMATS, render
from bot.store import Store

__all__ = [
    "FORMATS", "Digest", "Entry", "Period", "Section", "Sharer", "build_digest", "due_period",
    "last_full_week", "normalize_url", "period_from_args", "publish_digest", "publish_due", "render",
    "thread_texts", "write_digest",
]


def write_digest(store: Store, config: Config, fmt: str, out_path: str | Path | None,
                 period: Period, *, templates_dir: Path | None = None) -> Path | str:
    """Build and render the digest; write it to `out_path` (UTF-8, parent folders created) and
    return the path, or return the text itself when `out_path` is None or "-"."""
    text = render(build_digest(store, config, period), config, fmt, templates_dir=templates_dir)
    if out_path is None or str(out_path) == "-":
        return text
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # readers (a web server) never see half a file
    return path


def publish_due(store: Store, config: Config, adapters: list[Any], now: datetime) -> dict[str, list[str]]:
    """For the runtime's timer: publish the scheduled digest if one is due and not yet done."""
    period = due_period(config.digest.schedule, now, zone(config.digest.timezone))
    if period is None:
        return {}
    networks = [a for a in adapters if store.digest_state(period.key, a.network) != "done"]
    if not networks:
        return {}
    return publish_digest(store, config, networks, build_digest(store, config, period))
