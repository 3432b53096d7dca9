"""Patient merges: one row per merged source (its primary key), so a source is merged once, and a
repeated merge request answers with the first merge's result."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)


class PatientMerge(Base):
    """One row per merged source patient: who merged it into which target, and what moved."""

    __tablename__ = "patient_merges"

    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    target_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    merged_by: Mapped[str] = mapped_column(String(100))
    # Counts only: identifiers, history, orders, results.
    moved: Mapped[dict[str, int]] = mapped_column(JSONB)
