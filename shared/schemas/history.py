"""Medical history entries as the API speaks them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from shared.schemas.coding import Coding, CodingOut, CodingPatch
from shared.schemas.common import LongText, QueryModel, StrictModel, text

Category = Literal[
    "condition", "allergy", "medication", "procedure", "immunization", "family_history", "social_history", "note"
]
HistoryStatus = Literal["active", "resolved", "inactive", "entered-in-error"]
EARLIEST = date(1800, 1, 1)

HISTORY_READ_ONLY = {
    "id": "is assigned by the server",
    "patient_id": "changes only through a merge",
    "version": "is managed by the server; send If-Match instead",
    "recorded_at": "is set by the server",
    "recorded_by": "is the API key that recorded the entry",
    "created_at": "is managed by the server",
    "updated_at": "is managed by the server",
}


def _past(value: date) -> date:
    if value > date.today():
        raise ValueError("must not be in the future")
    if value < EARLIEST:
        raise ValueError(f"must not be before {EARLIEST.isoformat()}")
    return value


PastDate = Annotated[date, AfterValidator(_past)]


class HistoryEntryCreate(StrictModel):
    category: Category
    code: Coding | None = None
    status: HistoryStatus = "active"
    onset: PastDate | None = None
    abatement: PastDate | None = None
    notes: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HistoryEntryCreate:
        if self.onset and self.abatement and self.abatement < self.onset:
            raise ValueError("abatement must not be before onset")
        if self.code is None and self.notes is None:
            raise ValueError("give a code, notes, or both")
        return self


class HistoryEntryPatch(StrictModel):
    """A JSON merge patch (RFC 7396) of a history entry. Entries are never deleted: set
    ``status`` to ``entered-in-error`` to retract one."""

    category: Category | None = None
    code: CodingPatch | None = None
    status: HistoryStatus | None = None
    onset: PastDate | None = None
    abatement: PastDate | None = None
    notes: LongText | None = None


class HistoryEntry(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    category: Category
    code: CodingOut | None
    status: HistoryStatus
    onset: date | None
    abatement: date | None
    notes: str | None
    recorded_at: datetime
    recorded_by: str
    version: int
    updated_at: datetime


class HistoryQuery(QueryModel):
    category: Category | None = None
    status: HistoryStatus | None = None
    limit: int = Field(default=50, ge=1, le=100)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None
