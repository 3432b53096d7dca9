"""The audit trail: append-only (a trigger in the migration refuses UPDATE and DELETE)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient_ids", "patient_ids", postgresql_using="gin"),
        Index("ix_audit_log_at", "at"),
        # A LIS message's replays (its status history in the operator console).
        Index("ix_audit_log_lis_replay", text("(details ->> 'lis_message_id')"),
              postgresql_where=text("action = 'lis.message.replay'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    principal: Mapped[str] = mapped_column(String(100))
    principal_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    patient_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), default=list)
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    # Ids, counts and codes only: never patient data.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
