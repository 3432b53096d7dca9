"""The jobs function's tables: run history, per-job state, the data-quality report, overdue notices.

* ``job_runs``: one row per (job, slot). The slot is the scheduled time of the tick (or the moment
  of a manual run); the unique constraint *is* the claim, so a tick delivered twice, or under two
  ids, runs once.
* ``job_state``: one row per job: the cursor a long job resumes from, and the lease of the run
  currently holding the job (cursor writes are conditional on holding it).
* ``data_quality_issues``: the data-quality report, ids and reason codes only.
* ``order_overdue_notices``: the "once per order" claim of lis-reconcile's order-overdue event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)
from shared.models.orders import LabOrder

JOB_RUN_STATUSES = ("running", "succeeded", "incomplete", "failed", "retry", "skipped")
JOB_TRIGGERS = ("schedule", "cli", "console")


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "slot"),
        CheckConstraint("status IN ('running','succeeded','incomplete','failed','retry','skipped')", name="status"),
        CheckConstraint("trigger IN ('schedule','cli','console')", name="trigger"),
        Index("ix_job_runs_job_started_at", "job", "started_at"),
        Index("ix_job_runs_started_at", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))
    # The PingSource CloudEvent id of the delivery that claimed the slot (None for a manual run).
    event_id: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="running")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # A short PHI-free code (the job's own code, or the exception's type name), never a message.
    error_code: Mapped[str | None] = mapped_column(String(100))


class JobState(Base):
    __tablename__ = "job_state"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    holder: Mapped[uuid.UUID | None]  # the job_runs.id holding the lease
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


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
