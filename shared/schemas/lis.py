"""The LIS operator routes' resources: sync status, stored messages, replay outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from shared.schemas.common import QueryModel, StorableDatetime, text

LisStatus = Literal["processed", "duplicate", "ignored", "quarantined", "failed"]


class StatusCounts(BaseModel):
    processed: int
    duplicate: int
    ignored: int
    quarantined: int
    failed: int


class Counts(BaseModel):
    last_24h: StatusCounts
    total: StatusCounts


class Lag(BaseModel):
    """processed-at − MSH-7 (or − publish time without MSH-7), over the last hour."""

    p50: float | None
    p95: float | None
    max: float | None
    messages: int


class WarningCount(BaseModel):
    last_24h: int
    total: int


class LisSyncStatus(BaseModel):
    counts: Counts
    warnings: dict[str, WarningCount] = Field(
        description="Messages carrying each warning an operator must look at: control_id_reused (a different "
                    "message under an MSH-10 already used; list them with GET /lis/messages?warning=control_id_reused)")
    last_message_at: datetime | None
    lag_seconds: Lag


class LisMessageQuery(QueryModel):
    status: LisStatus | None = None
    type: text(40) | None = Field(default=None, description="ORU, or ORU^R01")  # type: ignore[valid-type]
    since: StorableDatetime | None = Field(default=None, description="Received at or after (RFC 3339 with offset)")
    warning: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.^-]+)?$", max_length=100)] | None = Field(
        default=None, description="Messages carrying this warning code: control_id_reused also matches "
                                  "control_id_reused:<message id>")
    include_raw: bool = Field(default=False, description="Include the raw bytes (needs scope lis:admin)")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class LisMessageRead(QueryModel):
    include_raw: bool = Field(default=False, description="Include the raw bytes (needs scope lis:admin)")


class LisMessage(BaseModel):
    id: uuid.UUID
    status: LisStatus
    error_code: str | None = Field(description="Quarantine/ignore reason or failure code (never message content)")
    warnings: list[str]
    message_type: str | None
    control_id: str | None
    sending_application: str | None
    sending_facility: str | None
    message_time: datetime | None
    received_at: datetime
    processed_at: datetime | None
    lag_seconds: float | None
    transport: str
    ce_source: str
    ce_id: str
    pubsub_message_id: str | None
    publish_time: datetime | None
    ordering_key: str | None
    part: int
    parts: int
    content_format: str
    patient_id: uuid.UUID | None
    patient_ids: list[uuid.UUID] = Field(description="Every patient the message concerned (several patient groups)")
    duplicate_of: uuid.UUID | None
    delivery_count: int
    attempts: int
    raw_size: int
    raw_sha256: str
    raw_purged: bool
    raw_base64: str | None = Field(default=None, description="Only with include_raw=true and scope lis:admin")


class LisMessagePage(BaseModel):
    items: list[LisMessage]
    next_cursor: str | None


class LisReplay(BaseModel):
    replayed: bool = Field(description="False when the message was not failed or quarantined (nothing to do)")
    message: LisMessage
