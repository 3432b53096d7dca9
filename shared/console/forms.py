"""The console's query strings, validated like the API's (unknown parameters and bad values are
refused with the field named, never the value)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, Field, ValidationError, field_validator

from shared.errors import ValidationFailed
from shared.http.context import validation_errors
from shared.schemas.common import QueryModel, text
from shared.schemas.lis import LisStatus

M = TypeVar("M", bound=BaseModel)


def parse(args: dict[str, str], model: type[M]) -> M:
    """An HTML form sends every field, empty ones as "": those mean "not given"."""
    try:
        return model.model_validate({k: v for k, v in args.items() if v.strip() != ""})
    except ValidationError as exc:
        raise ValidationFailed(validation_errors(exc, "query")) from None


class MessageListQuery(QueryModel):
    status: LisStatus | None = None
    type: text(40) | None = None  # type: ignore[valid-type]
    warning: text(200) | None = None  # type: ignore[valid-type]
    reason: text(200) | None = None  # type: ignore[valid-type]
    facility: text(200) | None = None  # type: ignore[valid-type]
    since: datetime | None = Field(default=None, description="Received at or after (UTC when no offset is given)")
    until: datetime | None = Field(default=None, description="Received before (UTC when no offset is given)")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: text(200) | None = None  # type: ignore[valid-type]

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # <input type="datetime-local"> sends no offset: the console shows and takes UTC.
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class MessageQuery(QueryModel):
    raw: bool = False
    outcome: Literal["replayed", "not_replayed"] | None = None


class DeadLetterListQuery(QueryModel):
    status: Literal["pending", "redriven", "all"] = "pending"
    type: text(200) | None = None  # type: ignore[valid-type]
    before: int | None = Field(default=None, ge=1, le=2**63 - 1)
    outcome: text(100) | None = None  # type: ignore[valid-type]


class DeadLetterQuery(QueryModel):
    outcome: Literal["redriven"] | None = None


class JobsQuery(QueryModel):
    ran: text(64) | None = None  # type: ignore[valid-type]
    run: text(64) | None = None  # type: ignore[valid-type]
    requested: AwareDatetime | None = None  # the moment of a run request: the slot its run claims


class NotificationListQuery(QueryModel):
    show: Literal["all", "outcome_unknown", "other"] = "all"
    before: int | None = Field(default=None, ge=1, le=2**63 - 1)
