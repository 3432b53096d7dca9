"""Cron schedules as Knative's PingSource reads them, for the jobs (slots) and the dev router (firing).

The grammar is robfig/cron's ``ParseStandard``, which Knative uses: five fields (minute hour
day-of-month month day-of-week) with ``*``, ``?``, numbers, ranges ``a-b``, steps ``*/n`` and
``a-b/n``, lists, month and weekday names, the descriptors ``@yearly @annually @monthly @weekly
@daily @midnight @hourly``, and a ``CRON_TZ=<zone>`` / ``TZ=<zone>`` prefix. ``@every`` is refused,
as Knative refuses it. When both day fields are restricted a day matches either, as in cron.

A PingSource tick is sent a moment after its scheduled minute and the CloudEvent ``time`` is the
send time, so the *slot* of a tick is the latest scheduled minute at or before the event time:
every delivery of one tick, whatever its id, maps to the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

_MONTHS = {n: i for i, n in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
# (name, low, high, names) per field
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS),
           ("day of week", 0, 6, _DAYS))
# Far enough for any valid expression (29 February needs up to eight years).
_MAX_DAYS = 366 * 8 + 2


class CronError(ValueError):
    """The expression is not a schedule PingSource accepts (safe to show: it quotes only the schedule)."""


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
    zone: ZoneInfo

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def _times(self, descending: bool) -> list[time]:
        return sorted((time(h, m) for h in self.hours for m in self.minutes), reverse=descending)

    def _to_utc(self, day: date, at: time) -> datetime:
        # A wall time skipped by a DST jump has no instant of its own; fold=0 resolves repeated ones to the first.
        return datetime.combine(day, at).replace(tzinfo=self.zone).astimezone(timezone.utc)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The latest scheduled minute at or before ``moment`` (aware), in UTC."""
        local = _local_minute(moment, self.zone)
        day, limit = local.date(), local.time()
        for _ in range(_MAX_DAYS):
            if self._day_matches(day):
                for at in self._times(descending=True):
                    if limit is None or at <= limit:
                        return self._to_utc(day, at)
            day, limit = day - timedelta(days=1), None
        raise CronError(f"schedule {self.expression!r} never fires")

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled minute strictly after ``moment`` (aware), in UTC."""
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        day, limit = local.date(), local.time()
        for _ in range(_MAX_DAYS):
            if self._day_matches(day):
                for at in self._times(descending=False):
                    if limit is None or at > limit:
                        return self._to_utc(day, at)
            day, limit = day + timedelta(days=1), None
        raise CronError(f"schedule {self.expression!r} never fires")


def _local_minute(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


@lru_cache(maxsize=128)
def parse(expression: str, tz: str | None = None) -> Schedule:
    spec = expression.strip()
    zone_name = tz
    if spec.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, spec = spec.partition(" ")
        zone_name, spec = prefix.split("=", 1)[1], spec.strip()
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except (KeyError, ValueError):
        raise CronError(f"unknown time zone {zone_name!r}") from None
    if spec.startswith("@"):
        if spec.startswith("@every"):
            raise CronError("@every is not accepted by PingSource")
        if spec not in _DESCRIPTORS:
            raise CronError(f"unknown descriptor {spec!r}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError("a schedule has five fields: minute hour day-of-month month day-of-week")
    sets = [_field(text, *spec_) for text, spec_ in zip(fields, _FIELDS, strict=True)]
    schedule = Schedule(
        expression=expression, minutes=sets[0], hours=sets[1], days=sets[2], months=sets[3],
        weekdays=frozenset(d % 7 for d in sets[4]),
        days_restricted=fields[2] not in ("*", "?"), weekdays_restricted=fields[4] not in ("*", "?"), zone=zone,
    )
    # Refuse schedules that can never fire (31 February) now rather than at the first tick.
    schedule.next_after(datetime(2000, 1, 1, tzinfo=timezone.utc))
    return schedule


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    top = 7 if name == "day of week" else high  # 7 is Sunday too
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = _number(step_text, name, {}) if step_text else 1
        if step < 1:
            raise CronError(f"{name}: step must be a positive number")
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, name, names), _number(b, name, names)
        else:
            start = _number(base, name, names)
            end = high if step_text else start
        if not (low <= start <= end <= top):
            raise CronError(f"{name}: values must lie in {low}-{top}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str, names: dict[str, int]) -> int:
    key = text.strip().lower()
    if key in names:
        return names[key]
    if not key.isdigit():
        raise CronError(f"{name}: {text!r} is not a number, name, range or *")
    return int(key)


def slot_for(expression: str, zone: str, moment: datetime) -> datetime:
    """The scheduled time (UTC) of the tick that ``moment`` belongs to."""
    return parse(expression, zone).latest_at_or_before(moment)
