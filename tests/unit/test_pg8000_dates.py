"""Dates and timestamps read by the ISO parser (shared.pg8000_dates) are pg8000's own values."""

import warnings

import pg8000.converters as converters
import pytest

from shared import pg8000_dates

CASES = [
    (converters.DATE, "1951-03-04"), (converters.DATE, "0001-01-01"), (converters.DATE, "9999-12-31"),
    (converters.DATE, "infinity"), (converters.DATE, "-infinity"), (converters.DATE, "0044-03-15 BC"),
    (converters.TIMESTAMP, "2026-12-05 12:48:44.1234"), (converters.TIMESTAMP, "2026-12-05 12:48:44"),
    (converters.TIMESTAMP, "2026-12-05 12:48:44.000001"), (converters.TIMESTAMP, "infinity"),
    (converters.TIMESTAMPTZ, "2026-12-05 12:48:44.371821+00"), (converters.TIMESTAMPTZ, "2026-12-05 12:48:44+00"),
    (converters.TIMESTAMPTZ, "2026-01-01 00:00:00.5+00"), (converters.TIMESTAMPTZ, "1900-01-01 00:00:00+00"),
    (converters.TIMESTAMPTZ, "infinity"), (converters.TIMESTAMPTZ, "-infinity"),
    (converters.TIMESTAMPTZ, "0044-03-15 12:00:00+00 BC"),
]


class _Connection:
    def __init__(self) -> None:
        self.pg_types = dict(converters.PG_TYPES)


@pytest.mark.parametrize(("oid", "text"), CASES)
def test_the_iso_reader_gives_pg8000_s_value(oid, text):
    con = _Connection()
    pg8000_dates.adapt(con)
    pg8000_dates.adapt(con)  # idempotent
    assert con.pg_types[oid] is not converters.PG_TYPES[oid]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dateutil's about "BC", in pg8000's own fallback
        ours, theirs = con.pg_types[oid](text), converters.PG_TYPES[oid](text)
    assert ours == theirs and type(ours) is type(theirs)
