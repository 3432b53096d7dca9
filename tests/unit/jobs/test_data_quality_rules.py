"""The data-quality rules are the API's rules (shared.schemas.patients), applied to stored data."""

from __future__ import annotations

from datetime import date

import pytest

from shared.jobs.data_quality import field_problems

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(("birth_date", "phone", "email", "reasons"), [
    (date(1980, 1, 1), "+14155550123", "a@example.org", []),
    (date(1980, 1, 1), None, None, []),  # contact data is optional
    (None, None, None, ["birth_date_missing"]),
    (date(2026, 6, 2), None, None, ["birth_date_in_future"]),
    (TODAY, None, None, []),
    (date(1889, 12, 31), None, None, ["birth_date_before_1890"]),
    (date(1890, 1, 1), None, None, []),
    (date(1980, 1, 1), "4155550123", None, ["phone_invalid"]),  # not E.164
    (date(1980, 1, 1), "+0155550123", None, ["phone_invalid"]),
    (date(1980, 1, 1), "+1 415 555 0123", None, ["phone_invalid"]),
    (date(1980, 1, 1), None, "not-an-email", ["email_invalid"]),
    (date(1980, 1, 1), None, "a@b", ["email_invalid"]),
    (None, "x", "y", ["birth_date_missing", "phone_invalid", "email_invalid"]),
])
def test_reasons(birth_date, phone, email, reasons):
    assert field_problems(birth_date, phone, email, TODAY) == reasons
