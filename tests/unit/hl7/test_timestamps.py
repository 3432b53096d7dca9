"""HL7 DTM/TS parsing and birth dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.hl7.timestamps import parse_birth_date, parse_dtm

UTC = UTC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("202403", datetime(2024, 3, 1, tzinfo=UTC)),
        ("20240315", datetime(2024, 3, 15, tzinfo=UTC)),
        ("2024031514", datetime(2024, 3, 15, 14, tzinfo=UTC)),
        ("202403151430", datetime(2024, 3, 15, 14, 30, tzinfo=UTC)),
        ("20240315143005", datetime(2024, 3, 15, 14, 30, 5, tzinfo=UTC)),
        ("20240315143005.1", datetime(2024, 3, 15, 14, 30, 5, 100000, tzinfo=UTC)),
        ("20240315143005.1234", datetime(2024, 3, 15, 14, 30, 5, 123400, tzinfo=UTC)),
        ("20240315143005-0500", datetime(2024, 3, 15, 14, 30, 5, tzinfo=timezone(timedelta(hours=-5)))),
        ("202403151430+0530", datetime(2024, 3, 15, 14, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        ("20240315+0000", datetime(2024, 3, 15, tzinfo=UTC)),
        (" 20240315 ", datetime(2024, 3, 15, tzinfo=UTC)),
    ],
)
def test_parse_dtm(raw: str, expected: datetime) -> None:
    parsed = parse_dtm(raw)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "24",
        "20241",
        "20241301",
        "20240230",
        "2024031525",
        "202403151460",
        "20240315143061",
        "20240315-2500",
        "20240315+0060",
        "2024-03-15",
        "20240315T1430",
        "********",
        "２０２４",
    ],
)
def test_parse_dtm_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_dtm(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("19800202", date(1980, 2, 2)),
        ("198002021230", date(1980, 2, 2)),
        ("19800202235900-1000", date(1980, 2, 2)),  # never shifted into UTC
    ],
)
def test_birth_date(raw: str, expected: date) -> None:
    assert parse_birth_date(raw) == expected


@pytest.mark.parametrize("raw", ["1980", "198002", "19800231", "196203520", "0000101", "00000101", "19800202-9900"])
def test_birth_date_rejects_partial_and_invalid(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_birth_date(raw)
