"""An HL7 v2 time as a FHIR dateTime at the precision sent (shared.fhir.times)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.fhir.times import date_time
from shared.hl7.timestamps import parse_dtm
from tests.support.fhir import validate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026", "2026"),
        ("202601", "2026-01"),
        ("20260101", "2026-01-01"),
        ("2026010112", "2026-01-01T12:00:00+00:00"),
        ("202601011230", "2026-01-01T12:30:00+00:00"),
        ("20260101123045", "2026-01-01T12:30:45+00:00"),
        ("20260101123045.1234", "2026-01-01T12:30:45.1234+00:00"),
        ("202601011230+0530", "2026-01-01T12:30:00+05:30"),
        ("20260101-0300", "2026-01-01"),  # a date keeps no offset
    ],
)
def test_the_precision_and_offset_sent_are_kept(text: str, expected: str) -> None:
    instant = parse_dtm(text)
    written = date_time(instant.astimezone(UTC), text)  # PostgreSQL gives the instant back in UTC
    assert written == expected
    if "T" in expected:  # the same instant as the one stored
        assert datetime.fromisoformat(written) == instant
    validate({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "effectiveDateTime": written})


def test_without_text_the_instant_is_written_as_it_is() -> None:
    instant = datetime(2026, 1, 1, 10, tzinfo=timezone(timedelta(hours=1)))
    assert date_time(instant, None) == "2026-01-01T10:00:00+01:00"
    assert date_time(None, "20260101") is None
