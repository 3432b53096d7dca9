"""Audit trail as the API returns it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.schemas.common import MAX_BIGINT, QueryModel


class AuditQuery(QueryModel):
    patient_id: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=500)
    before: int | None = Field(default=None, ge=1, le=MAX_BIGINT, description="Cursor: return entries with a smaller id.")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    principal: str
    action: str
    patient_ids: list[uuid.UUID]
    request_id: str | None
    outcome: str
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: int | None
