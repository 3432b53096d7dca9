"""HL7 DTM/TS values: ``YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]``.

A timestamp without an offset is taken as UTC. HL7 defines it as the sender's local time, which
this layer cannot know; the choice is documented in `model` so the consumer can correct it per
sending facility if it needs to. A birth date is the calendar date as written: it is never
shifted by the offset, or a child born late in the evening west of Greenwich would age a day.

Both functions raise ValueError for a value that is present but unreadable; the mapping turns
that into an entry of ``invalid_fields``.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["parse_birth_date", "parse_dtm"]

_DTM = re.compile(
    r"(?P<Y>[0-9]{4})(?:(?P<m>[0-9]{2})(?:(?P<d>[0-9]{2})"
    r"(?:(?P<H>[0-9]{2})(?:(?P<M>[0-9]{2})(?:(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,6}))?)?)?)?)?)?"
    r"(?P<z>[+-][0-9]{4})?",
    re.ASCII,
)


def _match(value: str) -> re.Match[str]:
    match = _DTM.fullmatch(value.strip())
    if match is None:
        raise ValueError("not an HL7 timestamp")
    return match


@functools.lru_cache(maxsize=512)
def parse_dtm(value: str) -> datetime:
    """Aware datetime; missing parts default to their start (month 1, day 1, 00:00:00).

    Kept per text (a datetime is immutable; an unreadable value raises each time): a result
    message repeats its times (MSH-7, OBR-7, each OBX-14 of a panel), parsed once each."""
    match = _match(value)
    offset = match["z"]
    tz = UTC
    if offset:
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    fraction = match["f"] or ""
    return datetime(
        int(match["Y"]),
        int(match["m"] or 1),
        int(match["d"] or 1),
        int(match["H"] or 0),
        int(match["M"] or 0),
        int(match["S"] or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
        tzinfo=tz,
    )


def parse_birth_date(value: str) -> date:
    """The date part of a DTM; a year or year-month alone is not a date and raises."""
    match = _match(value)
    if match["d"] is None:
        raise ValueError("partial date")
    parse_dtm(value)  # the time and offset, if any, must be valid too
    return date(int(match["Y"]), int(match["m"]), int(match["d"]))
