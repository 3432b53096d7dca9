"""Probable-duplicate flags: one row per pair of patients, ever.

A change of the matching fields (name, birth date, phone, e-mail) through the API or the LIS runs
the registry's duplicate search (``services.duplicates``); each candidate found becomes an ``open``
flag for the pair. A review closes it as ``not_duplicate`` or ``merged``; a merge closes the merged
pair as ``merged`` and carries the source's other open flags over to the target (``merged`` too:
closed by a merge). The pair is stored in
id order (``patient_a < patient_b``) and is unique, so ``INSERT … ON CONFLICT DO NOTHING`` never
flags a reviewed pair again, and two concurrent changes cannot flag the same pair twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

FLAG_STATUSES = ("open", "not_duplicate", "merged")


class DuplicateFlag(Base):
    __tablename__ = "duplicate_flags"
    __table_args__ = (
        CheckConstraint("status IN ('open','not_duplicate','merged')", name="status"),
        CheckConstraint("patient_a < patient_b", name="pair_ordered"),
        CheckConstraint("(status = 'open') = (reviewed_at IS NULL)", name="reviewed_iff_closed"),
        UniqueConstraint("patient_a", "patient_b"),
        Index("ix_duplicate_flags_patient_b", "patient_b"),
        Index("ix_duplicate_flags_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_a: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    patient_b: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    # The strongest rule that matched (services.duplicates.REASONS), or "manual" for a pair reviewed or
    # merged without a search having flagged it.
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # The patient whose change raised the flag, and through which path (api | lis).
    flagged_patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    origin: Mapped[str] = mapped_column(String(16))
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)
    flagged_by: Mapped[str] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
