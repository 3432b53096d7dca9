"""GET /patients/{id}/versions: every version of the patient and of its history entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.schemas.common import QueryModel, text

ResourceType = Literal["patient", "history"]


class VersionQuery(QueryModel):
    resource_type: ResourceType | None = None
    limit: int = Field(default=50, ge=1, le=100)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class VersionEntry(BaseModel):
    resource_type: ResourceType
    resource_id: uuid.UUID
    version: int
    change: str = Field(description="create, update, deactivate, merge, merge-target, move, baseline, lis-create or lis-update.")
    changed_at: datetime
    changed_by: str
    snapshot: dict[str, Any] = Field(description="The resource as the API returned it at this version.")


class VersionPage(BaseModel):
    items: list[VersionEntry]
    next_cursor: str | None
