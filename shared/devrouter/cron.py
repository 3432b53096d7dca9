"""A small cron parser for PingSource schedules (the subset Knative accepts, via robfig/cron).

Five fields (minute hour day-of-month month day-of-week) or six with a leading seconds field;
``*``, ``?``, lists, ranges, ``*/n`` and ``a-b/n`` steps, month and weekday names, the
descriptors ``@yearly @annually @monthly @weekly @daily @midnight @hourly``, and a
``CRON_TZ=<zone>`` / ``TZ=<zone>`` prefix. Like cron, when both day fields are restricted a day
matches either; ``@every`` is rejected as Knative rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_MONTHS = {n: i for i, n in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}
# (low, high, names) per field: second, minute, hour, day of month, month, day of week
_BOUNDS = [(0, 59, {}), (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DAYS)]


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool
    zone: ZoneInfo

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime) -> datetime:
        """The first scheduled instant strictly after ``after`` (aware), in UTC."""
        t = after.astimezone(self.zone).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t = t + timedelta(seconds=1)
            else:
                return t.replace(tzinfo=self.zone).astimezone(timezone.utc)
        raise CronError("the schedule never fires")


def parse(expression: str, tz: str | None = None) -> Schedule:
    spec = expression.strip()
    zone_name = tz
    if spec.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, spec = spec.partition(" ")
        zone_name = prefix.split("=", 1)[1]
        spec = spec.strip()
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
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise CronError("expected 5 fields (or 6 with seconds)")
    sets = [_field(text, *bounds) for text, bounds in zip(fields, _BOUNDS, strict=True)]
    weekdays = frozenset(7 % 7 if d == 7 else d for d in sets[5])
    return Schedule(sets[0], sets[1], sets[2], sets[3], sets[4], weekdays,
                    days_star=fields[3] in ("*", "?"), weekdays_star=fields[5] in ("*", "?"), zone=zone)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = _number(step_text, names) if step_text else 1
        if step < 1:
            raise CronError(f"bad step in {text!r}")
        if rng in ("*", "?"):
            start, end = low, high
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _number(a, names), _number(b, names)
        else:
            start = _number(rng, names)
            end = high if step_text else start
        top = 7 if high == 6 else high  # day of week accepts 7 for Sunday
        if not (low <= start <= top and low <= end <= top and start <= end):
            raise CronError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, names: dict[str, int]) -> int:
    key = text.strip().lower()
    if key in names:
        return names[key]
    if not key.isdigit():
        raise CronError(f"not a number: {text!r}")
    return int(key)
