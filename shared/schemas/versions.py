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
    field_sources: dict[str, Any] | None = Field(
        default=None,
        description="Patient versions: per demographic field (name, birth_date, sex, address, phone, email), which "
                    "side set it last as of this version — {\"source\": \"lis\", \"at\": MSH-7, \"message_id\": …} or "
                    "{\"source\": \"api\", \"at\": edit time, \"by\": principal}. A field absent was set by neither "
                    "since the record was created (registration).")


class VersionPage(BaseModel):
    items: list[VersionEntry]
    next_cursor: str | None
