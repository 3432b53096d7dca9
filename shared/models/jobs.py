"""The tables of the jobs' findings: the data-quality report and overdue notices (the runs and the
per-job state are in ``shared.models.job_runs``: a tick needs them without the patient and order tables
these reference).

* ``data_quality_issues``: the data-quality report, ids and reason codes only.
* ``order_overdue_notices``: the "once per order" claim of lis-reconcile's order-overdue event.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)
from shared.models.orders import LabOrder

DATA_QUALITY_REASONS = (
    "birth_date_missing",
    "birth_date_in_future",
    "birth_date_before_1890",
    "phone_invalid",
    "email_invalid",
    "probable_duplicate",
)


class DataQualityIssue(Base):
    __tablename__ = "data_quality_issues"
    __table_args__ = (
        CheckConstraint(
            "reason IN ('birth_date_missing','birth_date_in_future','birth_date_before_1890',"
            "'phone_invalid','email_invalid','probable_duplicate')",
            name="reason",
        ),
        Index("ix_data_quality_issues_reason_patient", "reason", "patient_id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Other patients involved (probable duplicates), ids only.
    related_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderOverdueNotice(Base):
    __tablename__ = "order_overdue_notices"

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab_orders.id"), primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    event_id: Mapped[uuid.UUID | None]  # the order.overdue CloudEvent id (set in the claiming transaction)
    # When the jobs function received that event back from the broker (the operator's record).
    recorded_at: Mapped[datetime | None]


# lis-reconcile's scan: open orders by the time they were placed. Declared here, next to the job that
# needs it, rather than in models/orders.py (migration 0006_jobs creates it).
Index(
    "ix_lab_orders_open_placed",
    func.coalesce(LabOrder.ordered_at, LabOrder.created_at),
    LabOrder.id,
    postgresql_where=text("status NOT IN ('cancelled','final','corrected')"),
)
