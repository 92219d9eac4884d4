"""Digest periods: an ISO week in the configured time zone, or any [since, until) span.

Arithmetic is done on local wall-clock time (aware datetimes sharing one ZoneInfo), so a week that
contains a DST change is still Monday 00:00 to Monday 00:00 local time (167 or 169 hours), never a
fixed 168 hours that would drift by one hour across the change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

WEEKDAYS = {
    "mon": 0, "monday": 0, "lun": 0, "lundi": 0,
    "tue": 1, "tuesday": 1, "mar": 1, "mardi": 1,
    "wed": 2, "wednesday": 2, "mer": 2, "mercredi": 2,
    "thu": 3, "thursday": 3, "jeu": 3, "jeudi": 3,
    "fri": 4, "friday": 4, "ven": 4, "vendredi": 4,
    "sat": 5, "saturday": 5, "sam": 5, "samedi": 5,
    "sun": 6, "sunday": 6, "dim": 6, "dimanche": 6,
}


@dataclass(frozen=True)
class Period:
    """[start, end) in local time. `kind` is "week" (an ISO week) or "span" (anything else)."""

    start: datetime
    end: datetime
    kind: str = "span"

    @property
    def key(self) -> str:
        """Stable identifier, used as the `digests.period` key: "2025-W03" or "2025-01-13/2025-01-20"."""
        if self.kind == "week":
            y, w, _ = self.start.date().isocalendar()
            return f"{y}-W{w:02d}"
        return f"{_short(self.start)}/{_short(self.end)}"

    @property
    def last_day(self) -> date:
        """The last calendar day inside the period (end is exclusive)."""
        return (self.end - timedelta(microseconds=1)).date()

    def previous(self) -> Period:
        """The period just before, of the same length (a week: the previous ISO week)."""
        if self.kind == "week":
            return week_of(self.start.date() - timedelta(days=7), self.start.tzinfo)  # type: ignore[arg-type]
        length = self.end - self.start
        start = _local(self.start.replace(tzinfo=None) - length, self.start.tzinfo)  # type: ignore[arg-type]
        return Period(start, self.start, self.kind)

    def history(self, n: int = 8) -> list[Period]:
        """The last `n` periods ending with this one, oldest first."""
        out = [self]
        while len(out) < n:
            out.append(out[-1].previous())
        return out[::-1]

    def contains(self, t: datetime) -> bool:
        # In UTC: aware datetimes sharing one tzinfo compare by wall clock, not by instant.
        start, end = self.utc()
        return start <= t.astimezone(timezone.utc) < end

    def utc(self) -> tuple[datetime, datetime]:
        return self.start.astimezone(timezone.utc), self.end.astimezone(timezone.utc)


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name or "Europe/Paris")


def week_of(day: date, tz: ZoneInfo) -> Period:
    """The ISO week (Monday to Sunday, local time) that contains `day`."""
    monday = day - timedelta(days=day.weekday())
    return Period(_local(datetime.combine(monday, time()), tz),
                  _local(datetime.combine(monday + timedelta(days=7), time()), tz), "week")


def last_full_week(now: datetime, tz: ZoneInfo) -> Period:
    """`--week`: the last ISO week that has fully ended at `now` (in `tz`)."""
    today = now.astimezone(tz).date()
    return week_of(today - timedelta(days=7), tz)


def parse_moment(text: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """A `--since`/`--until` value: a date (local midnight; as `--until` it is inclusive, so the
    period ends at the next midnight) or an ISO date-time (naive means local time)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        d = date.fromisoformat(text) + timedelta(days=1 if end else 0)
        return _local(datetime.combine(d, time()), tz)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM): {text!r}") from None
    return _local(t, tz) if t.tzinfo is None else t.astimezone(tz)


def period_from_args(*, now: datetime, tz_name: str, week: bool = False, since: str | None = None,
                     until: str | None = None) -> Period:
    """The period the CLI asked for. `--week` or nothing: the last full ISO week. `--since` alone
    runs until now; `--until` alone starts 7 days before it."""
    tz = zone(tz_name)
    if week or not (since or until):
        return last_full_week(now, tz)
    # "Until now" is until the next whole second: the store keeps times to the second, and a post
    # made in the current one is already in the past.
    end = parse_moment(until, tz, end=True) if until else (
        now.astimezone(tz).replace(microsecond=0) + timedelta(seconds=1))
    start = parse_moment(since, tz) if since else _local(end.replace(tzinfo=None) - timedelta(days=7), tz)
    if start >= end:
        raise ValueError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    p = Period(start, end)
    # A span that is exactly one ISO week is that week (same key as --week, same "previous").
    if start == week_of(start.date(), tz).start and end == week_of(start.date(), tz).end:
        return week_of(start.date(), tz)
    return p


def parse_schedule(schedule: str) -> tuple[int, time] | None:
    """`"mon 09:00"` -> (0, 09:00). Empty means no scheduled digest."""
    text = schedule.strip().lower()
    if not text:
        return None
    m = re.fullmatch(r"([a-z]+)\s+(\d{1,2}):(\d{2})", text)
    if not m or m.group(1) not in WEEKDAYS or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise ValueError('digest.schedule: expected a weekday and a time such as "mon 09:00", '
                         f"got {schedule!r}")
    return WEEKDAYS[m.group(1)], time(int(m.group(2)), int(m.group(3)))


def due_period(schedule: str, now: datetime, tz: ZoneInfo | str) -> Period | None:
    """Which digest is due at `now`: the last full ISO week, once this week's scheduled moment
    (local time) has passed; None before it or when there is no schedule. Pure: the runtime
    calls it on every tick and publishes the period if the `digests` table says it is not done,
    so a bot that was down at 09:00 still publishes when it comes back, once."""
    tz = zone(tz) if isinstance(tz, str) else tz
    parsed = parse_schedule(schedule)
    if parsed is None:
        return None
    weekday, at = parsed
    local = now.astimezone(tz)
    this_week = week_of(local.date(), tz)
    moment = _local(datetime.combine(this_week.start.date() + timedelta(days=weekday), at), tz)
    if local < moment:
        return None
    return this_week.previous()


def _local(naive: datetime, tz: ZoneInfo) -> datetime:
    """Attach `tz` to a wall-clock time; a time skipped by DST moves forward, an ambiguous one
    takes its first occurrence (fold=0), as zoneinfo does."""
    t = naive.replace(tzinfo=tz)
    # Normalise a non-existent local time (spring forward) through UTC.
    return t.astimezone(timezone.utc).astimezone(tz)


def _short(t: datetime) -> str:
    return t.date().isoformat() if t.time() == time() else t.isoformat(timespec="minutes")
