"""The one range check for instants from outside: a UTC form in years 1-9999, whatever the offset."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.instants import is_storable, utc_instant


def tz(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes) if hours >= 0 else -timedelta(hours=-hours, minutes=minutes))


@pytest.mark.parametrize("value", [
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=tz(-14)),  # 10000-01-01T13:59:59Z
    datetime(1, 1, 1, 0, 0, 0, tzinfo=tz(14)),  # year 0 in UTC
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=tz(-1)),
    datetime(1, 1, 1, 0, 59, 59, tzinfo=tz(1)),
    datetime(9999, 12, 31, 23, 0, tzinfo=tz(-23, 59)),
])
def test_instants_without_a_utc_form_are_refused(value):
    assert utc_instant(value) is None and not is_storable(value)


@pytest.mark.parametrize(("value", "utc"), [
    (datetime(9999, 12, 31, 23, 59, 59, tzinfo=tz(14)), datetime(9999, 12, 31, 9, 59, 59, tzinfo=UTC)),
    (datetime(1, 1, 1, 0, 0, 0, tzinfo=tz(-14)), datetime(1, 1, 1, 14, 0, 0, tzinfo=UTC)),
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    (datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)),
    (datetime(2026, 11, 25, 10, 15, tzinfo=tz(1)), datetime(2026, 11, 25, 9, 15, tzinfo=UTC)),
    (datetime(1, 1, 1), datetime(1, 1, 1, tzinfo=UTC)),  # naive: taken as UTC
])
def test_instants_at_the_edges_that_have_a_utc_form_are_kept(value, utc):
    assert utc_instant(value) == utc and utc_instant(value).tzinfo is UTC and is_storable(value)
