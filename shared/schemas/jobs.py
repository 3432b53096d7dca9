"""Job runs and the data-quality report as the API returns them (GET /jobs/runs, GET /jobs/data-quality)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from shared.jobs.registry import JOBS
from shared.schemas.common import QueryModel

RunStatus = Literal["running", "succeeded", "incomplete", "failed", "retry", "skipped"]
Reason = Literal["birth_date_missing", "birth_date_in_future", "birth_date_before_1890",
                 "phone_invalid", "email_invalid", "probable_duplicate"]


class JobRunsQuery(QueryModel):
    job: str | None = Field(default=None, description="Only this job (one of the names in docs/jobs.md).")
    limit: int = Field(default=50, ge=1, le=500)

    @field_validator("job")
    @classmethod
    def _known_job(cls, value: str | None) -> str | None:
        if value is not None and value not in JOBS:
            raise ValueError(f"unknown job; one of: {', '.join(sorted(JOBS))}")
        return value


class JobRunOut(BaseModel):
    id: uuid.UUID
    job: str
    slot: datetime = Field(description="The scheduled time of the tick (or the moment of a manual run).")
    trigger: Literal["schedule", "cli", "console"]
    status: RunStatus
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    error: str | None = Field(description="A short code (never a message): the job's own, or an exception type.")


class JobRunPage(BaseModel):
    items: list[JobRunOut] = Field(description="Newest first.")


class DataQualityQuery(QueryModel):
    reason: Reason | None = Field(default=None, description="Only patients flagged with this reason.")
    limit: int = Field(default=100, ge=1, le=1000)
    after: uuid.UUID | None = Field(default=None, description="Cursor: the next_cursor of the previous page.")


class DataQualityIssueOut(BaseModel):
    reason: Reason
    related_ids: list[uuid.UUID] = Field(description="Other patients involved (probable duplicates).")
    first_seen_at: datetime
    last_seen_at: datetime


class DataQualityItem(BaseModel):
    patient_id: uuid.UUID
    issues: list[DataQualityIssueOut]


class DataQualityPage(BaseModel):
    items: list[DataQualityItem] = Field(description="By patient id.")
    next_cursor: uuid.UUID | None
