"""Medical history entries: conditions, allergies, medications… never hard-deleted (status
``entered-in-error`` retracts one); every version is kept in ``resource_versions``."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

HISTORY_CATEGORIES = (
    "condition", "allergy", "medication", "procedure", "immunization", "family_history", "social_history", "note",
)
HISTORY_STATUSES = ("active", "resolved", "inactive", "entered-in-error")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class HistoryEntry(Base):
    __tablename__ = "history_entries"
    __table_args__ = (
        CheckConstraint(_in("category", HISTORY_CATEGORIES), name="category"),
        CheckConstraint(_in("status", HISTORY_STATUSES), name="status"),
        CheckConstraint("abatement IS NULL OR onset IS NULL OR abatement >= onset", name="abatement_after_onset"),
        CheckConstraint("version >= 1", name="version_positive"),
        # A patient's entries, newest first (the list's page order).
        Index("ix_history_entries_patient_recorded", "patient_id", "recorded_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    category: Mapped[str] = mapped_column(String(32))
    code_system: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(100))
    code_display: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(24), default="active")
    onset: Mapped[date | None] = mapped_column(Date)
    abatement: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The API key (principal name) that recorded the entry.
    recorded_by: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
