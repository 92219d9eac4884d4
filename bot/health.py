"""Judging the bot's health from what the runtime writes to the store (for `numpolville status`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def _age(stamp: str | None, now: datetime) -> float | None:
    return (now - datetime.fromisoformat(stamp)).total_seconds() if stamp else None


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def assess(health: dict[str, Any], max_silence: float, now: datetime | None = None) -> dict[str, Any]:
    """Add to each source whether it is ok, and say whether the bot as a whole is healthy: every
    source heard from within `max_silence` seconds and none failing for longer than that."""
    now = now or datetime.now(timezone.utc)
    sources = []
    for s in health["sources"]:
        heartbeat = _age(s["updated_at"], now)
        failing = _age(s["failing_since"], now) if s["state"] == "failing" else None
        problem = ""
        if s["state"] == "stopped":
            problem = "stopped"
        elif heartbeat is not None and heartbeat > max_silence:
            problem = f"silent for {heartbeat:.0f} s"
        elif failing is not None and failing > max_silence:
            problem = f"failing for {failing:.0f} s: {s['error']}"
        sources.append({**s, "ok": not problem, "problem": problem,
                        "last_event_ago": _ago(_age(s["last_event_at"], now)),
                        "heartbeat_ago": _ago(heartbeat)})
    problems = [f"{s['network']} {s['name']} {s['problem']}" for s in sources if s["problem"]]
    if not sources:
        problems.append("no source has ever run (is `numpolville run` started?)")
    return {**health, "sources": sources, "healthy": not problems, "problem": "; ".join(problems)}
