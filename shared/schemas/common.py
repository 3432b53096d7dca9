"""Reusable constrained types for API input."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

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
