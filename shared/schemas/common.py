"""Reusable constrained types for API input."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.instants import is_storable
from shared.normalize import has_control_chars


def _no_controls(value: str) -> str:
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value


def text(max_length: int, min_length: int = 1) -> type[str]:
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_no_controls),
    ]


# A keyset cursor over a bigint id: anything larger would reach PostgreSQL and fail there.
MAX_BIGINT = 2**63 - 1
EARLIEST_INSTANT = "0001-01-01T00:00:00Z"
LATEST_INSTANT = "9999-12-31T23:59:59.999999Z"


def _storable_instant(value: datetime) -> datetime:
    # Python's datetime ends at year 1 and 9999 in every offset; PostgreSQL's timestamptz reaches
    # further. An instant whose UTC form falls outside Python's calendar (0001-01-01T00:00:00+14:00)
    # would overflow inside the driver while it converts the parameter (shared.instants).
    if not is_storable(value):
        raise ValueError(f"must be an instant from {EARLIEST_INSTANT} to {LATEST_INSTANT}")
    return value


# Every date-time the API accepts: an RFC 3339 instant with an offset, within the range both Python
# and PostgreSQL hold whatever the offset.
StorableDatetime = Annotated[
    AwareDatetime, AfterValidator(_storable_instant),
    Field(description=f"RFC 3339 with an offset, from {EARLIEST_INSTANT} to {LATEST_INSTANT}"),
]

Name = text(200)
ShortText = text(100)
Code = text(64)
LongText = text(4000)


class StrictModel(BaseModel):
    """Input models: unknown fields are errors, strings are not coerced from numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class QueryModel(BaseModel):
    """Query strings arrive as text: numbers and booleans are parsed, unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=True)
