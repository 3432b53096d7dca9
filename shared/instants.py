"""Instants every layer can hold: the one range check for a datetime that came from outside.

A datetime is converted to UTC before it reaches PostgreSQL (pg8000 does it when it sends a
parameter, our code when it compares or orders instants). Python's datetime holds years 1 to
9999 only, so a value at the calendar's edge with an offset — ``9999-12-31T23:59:59-14:00`` is
``10000-01-01T13:59:59Z``, ``0001-01-01T00:00:00+14:00`` is in year 0 — has no UTC form: the
conversion raises OverflowError, and inside the driver it does so after part of the statement
was sent. PostgreSQL's ``timestamptz`` (4713 BC to 294276 AD) holds every instant Python can,
so "has a UTC form in Python" is the whole condition for a storable instant.

Check every datetime taken from a request or a message with `utc_instant` at the boundary and
refuse (4xx) or quarantine the ones it returns None for.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (what every timestamp column stores; importable without SQLAlchemy,
    ``shared.models.base`` re-exports it)."""
    return datetime.now(UTC)


def utc_instant(value: datetime) -> datetime | None:
    """`value` as an aware UTC datetime, or None when it has no UTC form Python and PostgreSQL can
    hold. A naive value is taken as UTC (the database session's zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def is_storable(value: datetime) -> bool:
    return utc_instant(value) is not None
