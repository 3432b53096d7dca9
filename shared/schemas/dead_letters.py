"""Dead letters as the API returns them (GET /events/dead-letters)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.schemas.common import MAX_BIGINT, QueryModel


class DeadLetterQuery(QueryModel):
    status: Literal["pending", "redriven", "all"] = Field(default="pending", description="pending: not re-driven yet.")
    type: str | None = Field(default=None, max_length=200, description="Only this CloudEvents type.")
    limit: int = Field(default=50, ge=1, le=200)
    before: int | None = Field(default=None, ge=1, le=MAX_BIGINT, description="Cursor: the next_cursor of the previous page.")


class DeadLetterEvent(BaseModel):
    id: str
    source: str
    type: str
    subject: str | None
    time: str | None
    dataschema: str | None


class DeadLetterError(BaseModel):
    code: str | None = Field(description="knativeerrorcode: the subscriber's HTTP status.")
    data: str | None = Field(description="knativeerrordata as received: base64 of the subscriber's response body (≤1024 chars).")
    response: str | None = Field(description="knativeerrordata decoded as text, when it decodes.")
    destination: str | None = Field(description="knativeerrordest: the subscriber's URL.")


class DeadLetterOut(BaseModel):
    id: uuid.UUID
    origin: Literal["knative", "pubsub"]
    event: DeadLetterEvent
    attributes: dict[str, str]
    datacontenttype: str | None
    data: Any | None = Field(description="The event data for this project's own event types (ids only, no PHI); "
                                         "null for others (an LIS message holds patient data).")
    data_bytes: int
    error: DeadLetterError
    delivery_attempts: int | None
    received_at: datetime
    dead_letter_count: int
    redriven_at: datetime | None
    redrive_count: int
    redrivable: bool


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: int | None
