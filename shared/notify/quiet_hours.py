"""Quiet hours: when a message to a patient must wait until the morning of the patient's own time zone.

Pure: the caller passes the current instant, the patient's IANA time zone and the window. The window
is in local wall-clock time, ``start`` inclusive and ``end`` exclusive; it may cross midnight
(21:00–08:00) or not (13:00–15:00). ``start == end`` means no quiet hours.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_START = time(21, 0)
DEFAULT_END = time(8, 0)


def zone_or_utc(tz: str | None) -> tzinfo:
    """The IANA zone ``tz``, or UTC when it is empty, unknown or malformed."""
    if not tz:
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        return timezone.utc


def in_quiet_hours(local_time: time, start: time = DEFAULT_START, end: time = DEFAULT_END) -> bool:
    """Whether a local wall-clock time lies in the window [start, end)."""
    if start == end:
        return False
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end


def _offset(instant: datetime, zone: tzinfo) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


def _local_instants(day: date, at: time, zone: tzinfo) -> list[datetime]:
    """The UTC instants at which the local wall time ``day at`` is reached, earliest first.

    Two for a time repeated when clocks go back; one otherwise. A time skipped when clocks go
    forward resolves forward to the instant of the jump, the first moment the wall clock shows
    a later time (02:30 on a day that jumps from 02:00 to 03:00 → 03:00).
    """
    naive = datetime.combine(day, at.replace(tzinfo=None))
    instants = {naive.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc) for fold in (0, 1)}
    exists = sorted(i for i in instants if i.astimezone(zone).replace(tzinfo=None) == naive)
    if exists:
        return exists
    # In a gap, fold=1 (offset after the jump) gives an instant before the jump and fold=0
    # (offset before it) one after: bisect between them for the jump itself.
    lo, hi = min(instants), max(instants)
    before = _offset(lo, zone)
    while hi - lo > timedelta(microseconds=1):
        mid = lo + (hi - lo) / 2
        if _offset(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    return [hi]


def next_allowed_send(
    now_utc: datetime, tz: str | None, start: time = DEFAULT_START, end: time = DEFAULT_END
) -> datetime | None:
    """None when ``now_utc`` is outside quiet hours in zone ``tz``; else the UTC instant they end.

    ``now_utc`` must be timezone-aware (any offset; it is compared as an instant). An empty, unknown
    or malformed ``tz`` is treated as UTC. The result is the next occurrence of local ``end`` after
    now (the second one of a repeated hour if now is already in its second pass); when ``end``
    does not exist that day because the clocks jump over it, the instant of the jump (or, should
    the jump land inside the window again, the end of that window).
    """
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("now_utc must be timezone-aware")
    now = now_utc.astimezone(timezone.utc)
    zone = zone_or_utc(tz)
    if not in_quiet_hours(now.astimezone(zone).time(), start, end):
        return None
    instant = now
    # One step is enough unless a clock jump lands inside the window again (Samoa skipped a whole
    # day in 2011: the jump at midnight lands at 00:00, still quiet): then step again from there.
    for _ in range(3):
        instant = _end_of_window(instant, zone, start, end)
        if not in_quiet_hours(instant.astimezone(zone).time(), start, end):
            return instant
    raise AssertionError("unreachable: quiet hours end within three steps")  # pragma: no cover


def _end_of_window(now: datetime, zone: tzinfo, start: time, end: time) -> datetime:
    """The first instant after ``now`` (inside the window) at which local ``end`` is reached."""
    local = now.astimezone(zone)
    day = local.date()
    if start > end and local.time() >= start:  # evening part of a window that crosses midnight
        day += timedelta(days=1)
    for candidate_day in (day, day + timedelta(days=1)):
        for instant in _local_instants(candidate_day, end, zone):
            if instant > now:
                return instant
    raise AssertionError("unreachable: a local end time is reached within two days")  # pragma: no cover
