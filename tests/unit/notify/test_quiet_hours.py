"""Quiet hours: examples (midnight crossing, DST, bad zones) and properties over every IANA zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.notify.quiet_hours import in_quiet_hours, next_allowed_send

UTC = timezone.utc
NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- default window 21:00–08:00 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2025, 1, 15, 1, 59), None),  # 20:59 EST
        (utc(2025, 1, 15, 2, 0), utc(2025, 1, 15, 13, 0)),  # 21:00 EST → 08:00 EST next morning
        (utc(2025, 1, 15, 3, 0), utc(2025, 1, 15, 13, 0)),  # 22:00
        (utc(2025, 1, 15, 5, 0), utc(2025, 1, 15, 13, 0)),  # 00:00 (after midnight)
        (utc(2025, 1, 15, 12, 59, 59), utc(2025, 1, 15, 13, 0)),  # 07:59:59
        (utc(2025, 1, 15, 13, 0), None),  # 08:00 exactly: end is exclusive
        (utc(2025, 1, 15, 18, 0), None),  # 13:00
        (utc(2025, 7, 15, 2, 0), utc(2025, 7, 15, 12, 0)),  # 22:00 EDT → 08:00 EDT
    ],
)
def test_default_window_new_york(now: datetime, expected: datetime | None) -> None:
    assert next_allowed_send(now, NY) == expected


def test_night_before_spring_forward_ends_at_local_eight_in_the_new_offset() -> None:
    # 2025-03-08 22:00 EST; clocks go forward at 02:00 on the 9th, so 08:00 is EDT (12:00 UTC).
    assert next_allowed_send(utc(2025, 3, 9, 3, 0), NY) == utc(2025, 3, 9, 12, 0)


def test_night_before_fall_back_ends_at_local_eight_in_the_new_offset() -> None:
    # 2025-11-01 22:00 EDT; clocks go back at 02:00 on the 2nd, so 08:00 is EST (13:00 UTC).
    assert next_allowed_send(utc(2025, 11, 2, 2, 0), NY) == utc(2025, 11, 2, 13, 0)


def test_result_is_utc_and_input_offset_does_not_matter() -> None:
    now = datetime(2025, 1, 14, 22, 0, tzinfo=ZoneInfo(NY))
    result = next_allowed_send(now, NY)
    assert result == utc(2025, 1, 15, 13, 0)
    assert result is not None and result.tzinfo is UTC


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_allowed_send(datetime(2025, 1, 15, 3, 0), NY)


# -- windows ---------------------------------------------------------------------------------


def test_window_that_does_not_cross_midnight() -> None:
    start, end = time(13, 0), time(15, 0)
    assert next_allowed_send(utc(2025, 1, 15, 12, 59), "UTC", start, end) is None
    assert next_allowed_send(utc(2025, 1, 15, 13, 0), "UTC", start, end) == utc(2025, 1, 15, 15, 0)
    assert next_allowed_send(utc(2025, 1, 15, 14, 30), "UTC", start, end) == utc(2025, 1, 15, 15, 0)
    assert next_allowed_send(utc(2025, 1, 15, 15, 0), "UTC", start, end) is None
    assert next_allowed_send(utc(2025, 1, 15, 23, 0), "UTC", start, end) is None


def test_empty_window_is_never_quiet() -> None:
    assert next_allowed_send(utc(2025, 1, 15, 3, 0), NY, time(8), time(8)) is None


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", None, "../../etc/passwd", "/etc/localtime", "Europe/", "\x00"])
def test_invalid_zone_is_treated_as_utc(tz: str | None) -> None:
    assert next_allowed_send(utc(2025, 1, 15, 23, 0), tz) == utc(2025, 1, 16, 8, 0)
    assert next_allowed_send(utc(2025, 1, 15, 12, 0), tz) is None


# -- DST: nonexistent and repeated end times ---------------------------------------------------------


def test_nonexistent_end_time_resolves_forward_to_the_jump() -> None:
    # 2025-03-09 New York: 02:00 EST → 03:00 EDT, so 02:30 does not exist. Quiet hours end when
    # the clocks jump past it: 03:00 EDT (07:00 UTC), the first moment the wall clock shows ≥ 02:30.
    now = utc(2025, 3, 9, 6, 0)  # 01:00 EST, inside 21:00–02:30
    result = next_allowed_send(now, NY, time(21), time(2, 30))
    assert result == utc(2025, 3, 9, 7, 0)
    assert result is not None and result.astimezone(ZoneInfo(NY)).time() == time(3, 0)


def test_nonexistent_end_time_in_europe() -> None:
    # 2025-03-30 London: 01:00 GMT → 02:00 BST; 01:30 resolves to the jump, 02:00 BST (01:00 UTC).
    result = next_allowed_send(utc(2025, 3, 29, 23, 0), "Europe/London", time(22), time(1, 30))
    assert result == utc(2025, 3, 30, 1, 0)


def test_end_time_that_is_the_first_skipped_minute() -> None:
    # 08:00 skipped (a clock jump from 08:00 to 09:00): quiet hours end at the jump, 09:00 local.
    # Real zones jump at night; Europe/London's 01:00 → 02:00 plays the part with end=01:00.
    result = next_allowed_send(utc(2025, 3, 29, 23, 0), "Europe/London", time(21), time(1, 0))
    assert result == utc(2025, 3, 30, 1, 0)
    assert result is not None and result.astimezone(ZoneInfo("Europe/London")).time() == time(2, 0)


def test_repeated_end_time_first_pass_and_second_pass() -> None:
    # 2025-11-02 New York: 02:00 EDT → 01:00 EST, so 01:00–02:00 happens twice.
    start, end = time(0, 0), time(1, 30)
    first_pass = utc(2025, 11, 2, 5, 10)  # 01:10 EDT
    second_pass = utc(2025, 11, 2, 6, 10)  # 01:10 EST
    assert next_allowed_send(first_pass, NY, start, end) == utc(2025, 11, 2, 5, 30)  # 01:30 EDT
    assert next_allowed_send(second_pass, NY, start, end) == utc(2025, 11, 2, 6, 30)  # 01:30 EST


def test_a_day_that_does_not_exist() -> None:
    # Samoa skipped 2011-12-30 entirely (UTC-10 → UTC+14). 23:00 on the 29th → 08:00 on the 31st.
    now = utc(2011, 12, 30, 9, 0)  # 23:00 local on the 29th
    result = next_allowed_send(now, "Pacific/Apia")
    assert result is not None
    local = result.astimezone(ZoneInfo("Pacific/Apia"))
    assert (local.date(), local.time()) == (date(2011, 12, 31), time(8, 0))


# -- properties ----------------------------------------------------------------------------------


def _exists(day: date, at: time, zone: ZoneInfo) -> bool:
    naive = datetime.combine(day, at)
    return any(
        naive.replace(tzinfo=zone, fold=f).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive for f in (0, 1)
    )


@settings(max_examples=1500, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2080, 1, 1), timezones=st.just(UTC)),
    tz=st.timezone_keys(),
    start=st.times(),
    end=st.times(),
)
@example(now=utc(2025, 3, 9, 3, 0), tz=NY, start=time(21), end=time(8))
@example(now=utc(2025, 3, 9, 6, 0), tz=NY, start=time(21), end=time(2, 30))
@example(now=utc(2025, 11, 2, 6, 10), tz=NY, start=time(0), end=time(1, 30))
@example(now=utc(2011, 12, 30, 9, 0), tz="Pacific/Apia", start=time(21), end=time(8))
@example(now=utc(2011, 12, 30, 9, 0), tz="Pacific/Apia", start=time(21), end=time(0, 30))
def test_properties(now: datetime, tz: str, start: time, end: time) -> None:
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    result = next_allowed_send(now, tz, start, end)

    if result is None:
        assert not in_quiet_hours(local_now.time(), start, end)
        return
    assert in_quiet_hours(local_now.time(), start, end)
    assert result.utcoffset() == timedelta(0)
    # always in the future, and never more than a day and the longest DST jump away
    assert now < result <= now + timedelta(hours=48)
    local = result.astimezone(zone)
    if local.time() != end:
        # end did not exist that day (the clocks jumped over it): the result is the jump itself
        skipped = [
            datetime.combine(day, end)
            for day in (local.date(), local.date() - timedelta(days=1))
            if not _exists(day, end, zone)
        ]
        assert skipped
        just_before = (result - timedelta(microseconds=1)).astimezone(zone)
        assert just_before.utcoffset() != local.utcoffset()
        assert just_before.replace(tzinfo=None) < skipped[0] < local.replace(tzinfo=None)
    # outside quiet hours when it is reached
    assert not in_quiet_hours(local.time(), start, end)
    # and the earliest such instant: a moment before, it was still quiet
    before = (result - timedelta(microseconds=1)).astimezone(zone)
    assert in_quiet_hours(before.time(), start, end)
