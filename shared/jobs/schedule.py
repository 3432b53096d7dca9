"""Cron schedules, pure: parse a 5-field expression and find the slot a tick belongs to.

A PingSource fires at its scheduled minute and sends a moment later (the adapter waits a random
0-499 ms; the CloudEvent ``time`` is the *send* time). The slot of a tick is therefore the latest
scheduled time at or before the event time: every delivery of one tick, whatever its id, maps to
the same slot, and the run claims (job, slot) once.

The subset understood is what the manifests use and what robfig/cron (Knative's parser) accepts in
5-field form: ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and lists ``a,b``.
Names (``MON``, ``JAN``), ``?``, seconds and descriptors (``@daily``) are rejected rather than guessed.
As in cron, when both day-of-month and day-of-week are restricted a day matches either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

# (name, lowest, highest)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
# Far enough back for any valid expression (29 February needs up to eight years).
_MAX_DAYS_BACK = 366 * 8 + 2


class InvalidSchedule(ValueError):
    """The expression is not a 5-field cron schedule this module understands."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 folded into 0)
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def latest_at_or_before(self, local: datetime) -> datetime:
        """The latest scheduled wall-clock minute at or before ``local`` (naive, local time)."""
        day = local.date()
        limit: time | None = local.time()
        for _ in range(_MAX_DAYS_BACK):
            if self._day_matches(day):
                found = self._latest_in_day(limit)
                if found is not None:
                    return datetime.combine(day, found)
            day -= timedelta(days=1)
            limit = None
        raise InvalidSchedule(f"schedule {self.expression!r} never fires")

    def _latest_in_day(self, limit: time | None) -> time | None:
        for hour in sorted(self.hours, reverse=True):
            if limit is not None and hour > limit.hour:
                continue
            for minute in sorted(self.minutes, reverse=True):
                if limit is not None and hour == limit.hour and minute > limit.minute:
                    continue
                return time(hour, minute)
        return None


def _parse_field(text: str, name: str, low: int, high: int) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    restricted = text != "*"
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise InvalidSchedule(f"{name}: step must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise InvalidSchedule(f"{name}: range must be two numbers")
            start, end = int(a), int(b)
        elif base.isdigit():
            start = int(base)
            end = high if step_text else start
        else:
            raise InvalidSchedule(f"{name}: {base!r} is not a number, range or *")
        if not (low <= start <= end <= high):
            raise InvalidSchedule(f"{name}: values must lie in {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values), restricted


@lru_cache(maxsize=64)
def parse(expression: str) -> Schedule:
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidSchedule("a schedule has five fields: minute hour day-of-month month day-of-week")
    parsed = [_parse_field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in parsed[4][0])
    return Schedule(
        expression=expression,
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=weekdays,
        days_restricted=parsed[2][1],
        weekdays_restricted=parsed[4][1],
    )


def slot_for(expression: str, zone: str, moment: datetime) -> datetime:
    """The scheduled time (UTC) of the tick that ``moment`` belongs to: the latest one at or before it."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    latest = parse(expression).latest_at_or_before(local)
    # A wall time skipped by a DST jump has no instant; fold=0 resolves repeated ones to the first.
    return latest.replace(tzinfo=tz).astimezone(timezone.utc)
