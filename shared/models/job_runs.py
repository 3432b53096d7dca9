"""The jobs function's own tables: run history and per-job state.

* ``job_runs``: one row per (job, slot). The slot is the scheduled time of the tick (or the moment
  of a manual run); the unique constraint *is* the claim, so a tick delivered twice, or under two
  ids, runs once.
* ``job_state``: one row per job: the cursor a long job resumes from, and the lease of the run
  currently holding the job (cursor writes are conditional on holding it).

No foreign keys: a tick loads these without the patient and order tables (cold start).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow

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
