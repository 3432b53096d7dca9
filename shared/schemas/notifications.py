"""Notifications as GET /patients/{id}/notifications returns them: status, reason, channel and times — no content."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.schemas.common import MAX_BIGINT, QueryModel


class NotificationQuery(QueryModel):
    limit: int = Field(default=50, ge=1, le=200)
    before: int | None = Field(default=None, ge=1, le=MAX_BIGINT, description="Cursor: the next_cursor of the previous page.")


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: Literal["results_ready", "welcome", "reminder"]
    channel: Literal["email", "sms"]
    status: Literal["sending", "sent", "pending", "scheduled", "skipped", "failed"] = Field(
        description="sending: being sent now; pending: will be retried after a transient provider error; "
        "failed with reason outcome_unknown: the sender stopped during the provider call — check before resending."
    )
    reason: str | None = Field(description="Why skipped, scheduled, pending or failed (a code).")
    language: str | None
    event_type: str | None
    order_id: uuid.UUID | None
    attempts: int
    send_after: datetime | None
    sent_at: datetime | None
    provider_message_id: str | None
    created_at: datetime
    updated_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: int | None
