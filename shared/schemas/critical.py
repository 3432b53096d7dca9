"""A critical-result alert as the api shows it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class AlertMessage(BaseModel):
    level: str = Field(description="alert (the first message) or escalation")
    channel: str | None = Field(description="email, sms or webhook; null when no route matched")
    status: str = Field(description="sending, sent, pending (retrying), failed, unrouted")
    reason: str | None
    attempts: int
    sent_at: datetime | None


class Alert(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    result_id: uuid.UUID
    order_id: uuid.UUID | None
    code: str | None
    reason: str = Field(description='Why it is critical: "flag:HH", "flag:LL", "flag:AA", "range:low", "range:high"')
    facility: str | None
    ward: str | None
    route: str | None = Field(description="The CRITICAL_ALERT_ROUTES key it matched when raised")
    status: str = Field(description="open or acknowledged")
    escalate_at: datetime
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="The name of the API key that acknowledged it")
    messages: list[AlertMessage]
    version: int
    created_at: datetime
