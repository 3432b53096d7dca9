"""Every version of a patient and of a history entry, as a JSON snapshot of the API resource.

Written in the same transaction as the change; append-only (a trigger in 0002_registry refuses
UPDATE, DELETE and TRUNCATE). ``(resource_type, resource_id, version)`` is unique, so a version
can be recorded once only. Merges are recorded in ``patient_merges``: one row per merged source
(its primary key), which is what makes a repeated merge answer with the first one's result.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

VERSIONED_TYPES = ("patient", "history")


class ResourceVersion(Base):
    __tablename__ = "resource_versions"
    __table_args__ = (
        CheckConstraint("resource_type IN ('patient','history')", name="resource_type"),
        UniqueConstraint("resource_type", "resource_id", "version"),
        Index("ix_resource_versions_patient_id", "patient_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[uuid.UUID]
    # The patient the resource belonged to when this version was written.
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    version: Mapped[int] = mapped_column(Integer)
    # create | update | deactivate | merge | merge-target | move | baseline | lis-create | lis-update
    change: Mapped[str] = mapped_column(String(32))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Patient versions: per demographic field, which side set it last as of this version
    # ({"name": {"source": "api", "at": …}, …}; migration 0011). Null for history entries.
    field_sources: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

