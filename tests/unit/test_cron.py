"""PingSource schedules as Knative reads them: next fire times for the dev router, slots for the jobs."""

from datetime import datetime, timezone

import pytest

from shared.cron import CronError, parse, slot_for

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
    ("CRON_TZ=Etc/UTC 0 3 * * ?", datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)),
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


@pytest.mark.parametrize("expression", ["@every 1m", "* * * *", "* * * * * *", "60 * * * *", "* * * 13 *", "* * * * 8", "* 24 * * *", "*/0 * * * *", "x * * * *",
                                        "5-1 * * * *", "@fortnightly", "0 0 31 2 *"])
def test_invalid_schedules_are_refused(expression):
    with pytest.raises(CronError):
        parse(expression).next_after(T0)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(CronError):
        parse("* * * * *", "Mars/Olympus")


UTC = timezone.utc


def at(*args: int, us: int = 0) -> datetime:
    return datetime(*args, microsecond=us, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "moment", "slot"), [
    ("* * * * *", at(2026, 1, 1, 0, 1, 0, us=123456), at(2026, 1, 1, 0, 1)),
    ("* * * * *", at(2026, 1, 1, 0, 1, 59, us=999999), at(2026, 1, 1, 0, 1)),
    ("15 2 * * *", at(2026, 3, 10, 2, 15, 0, us=400000), at(2026, 3, 10, 2, 15)),
    ("15 2 * * *", at(2026, 3, 10, 2, 14, 59), at(2026, 3, 9, 2, 15)),  # before tonight's: last night's
    ("15 2 * * *", at(2026, 3, 1, 0, 0), at(2026, 2, 28, 2, 15)),  # across a month end
    ("30 3 * * *", at(2027, 1, 1, 3, 29), at(2026, 12, 31, 3, 30)),  # across a year end
    ("5 * * * *", at(2026, 6, 1, 10, 5, 0, us=250000), at(2026, 6, 1, 10, 5)),
    ("5 * * * *", at(2026, 6, 1, 10, 4), at(2026, 6, 1, 9, 5)),
    ("5 * * * *", at(2026, 6, 1, 0, 2), at(2026, 5, 31, 23, 5)),
    ("*/15 8-17 * * 1-5", at(2026, 6, 6, 12, 0), at(2026, 6, 5, 17, 45)),  # Saturday → Friday's last
    ("0 0 29 2 *", at(2026, 6, 1, 0, 0), at(2024, 2, 29, 0, 0)),
    ("0 12 1 * 0", at(2026, 6, 3, 13, 0), at(2026, 6, 1, 12, 0)),  # dom OR dow: the 1st (a Monday)
    ("0 12 1 * 0", at(2026, 6, 8, 13, 0), at(2026, 6, 7, 12, 0)),  # ... or a Sunday
    ("0 12 * * 7", at(2026, 6, 8, 13, 0), at(2026, 6, 7, 12, 0)),  # 7 is Sunday too
    ("0,30 * * * *", at(2026, 6, 8, 13, 29), at(2026, 6, 8, 13, 0)),
])
def test_slot_is_the_latest_scheduled_minute_at_or_before_the_event(expression, moment, slot):
    assert slot_for(expression, "Etc/UTC", moment) == slot


def test_a_zone_shifts_the_schedule_and_the_slot_is_utc():
    # 02:15 in Madrid (UTC+1 in winter) is 01:15 UTC.
    assert slot_for("15 2 * * *", "Europe/Madrid", at(2026, 1, 10, 1, 20)) == at(2026, 1, 10, 1, 15)
    assert slot_for("15 2 * * *", "Europe/Madrid", at(2026, 1, 10, 1, 10)) == at(2026, 1, 9, 1, 15)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        slot_for("* * * * *", "Etc/UTC", datetime(2026, 1, 1))


@pytest.mark.parametrize("expression", [
    "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
    "*/0 * * * *", "5-1 * * * *", "0 0 * JAN-XYZ *", "0 0 31 2 *",
])
def test_expressions_pingsource_refuses_are_refused_for_slots_too(expression):
    with pytest.raises(CronError):
        slot_for(expression, "Etc/UTC", at(2026, 1, 1, 0, 0))


def test_parse_expands_fields():
    s = parse("1-10/3 0,12 * * 1-5")
    assert s.minutes == {1, 4, 7, 10} and s.hours == {0, 12} and s.weekdays == {1, 2, 3, 4, 5}
