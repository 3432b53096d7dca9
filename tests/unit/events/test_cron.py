"""PingSource schedules: the cron subset Knative accepts."""

from datetime import datetime, timezone

import pytest

from shared.devrouter.cron import CronError, parse

T0 = datetime(2026, 1, 1, 2, 14, 30, tzinfo=timezone.utc)  # a Thursday


@pytest.mark.parametrize("expression, expected", [
    ("* * * * *", datetime(2026, 1, 1, 2, 15, tzinfo=timezone.utc)),
    ("15 2 * * *", datetime(2026, 1, 1, 2, 15, tzinfo=timezone.utc)),
    ("14 2 * * *", datetime(2026, 1, 2, 2, 14, tzinfo=timezone.utc)),
    ("5 * * * *", datetime(2026, 1, 1, 3, 5, tzinfo=timezone.utc)),
    ("*/20 * * * *", datetime(2026, 1, 1, 2, 20, tzinfo=timezone.utc)),
    ("10-20/5 3 * * *", datetime(2026, 1, 1, 3, 10, tzinfo=timezone.utc)),
    ("0 9 * * MON-FRI", datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)),
    ("0 9 * * sat,sun", datetime(2026, 1, 3, 9, 0, tzinfo=timezone.utc)),
    ("0 0 1 * *", datetime(2026, 2, 1, tzinfo=timezone.utc)),
    ("0 0 29 2 *", datetime(2028, 2, 29, tzinfo=timezone.utc)),
    ("0 0 * * 7", datetime(2026, 1, 4, tzinfo=timezone.utc)),  # 7 is Sunday too
    ("@hourly", datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)),
    ("@daily", datetime(2026, 1, 2, tzinfo=timezone.utc)),
    ("*/10 * * * * *", datetime(2026, 1, 1, 2, 14, 40, tzinfo=timezone.utc)),  # optional seconds field
])
def test_next_fire_time(expression, expected):
    assert parse(expression, "Etc/UTC").next_after(T0) == expected


def test_restricted_day_of_month_and_weekday_match_either_as_in_cron():
    # the 15th, or any Monday: Monday 5 January comes first
    assert parse("0 0 15 * MON").next_after(T0) == datetime(2026, 1, 5, tzinfo=timezone.utc)


def test_the_timezone_field_and_the_cron_tz_prefix_shift_the_schedule():
    expected = datetime(2026, 1, 1, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York (EST, UTC-5)
    assert parse("0 9 * * *", "America/New_York").next_after(T0) == expected
    assert parse("CRON_TZ=America/New_York 0 9 * * *").next_after(T0) == expected


def test_next_after_is_strictly_after():
    at = datetime(2026, 1, 1, 2, 15, tzinfo=timezone.utc)
    assert parse("15 2 * * *").next_after(at) == datetime(2026, 1, 2, 2, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize("expression", ["@every 1m", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "x * * * *",
                                        "5-1 * * * *", "@fortnightly", "0 0 31 2 *"])
def test_invalid_schedules_are_refused(expression):
    with pytest.raises(CronError):
        parse(expression).next_after(T0)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(CronError):
        parse("* * * * *", "Mars/Olympus")
