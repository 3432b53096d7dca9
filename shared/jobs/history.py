"""Reading what the jobs did: the run history and the data-quality report."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from shared.db import UnitOfWork
from shared.models import JobRun
from shared.models import DataQualityIssue


def list_runs(uow: UnitOfWork, *, job: str | None, limit: int) -> list[JobRun]:
    """Newest first."""
    stmt = sa.select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if job is not None:
        stmt = stmt.where(JobRun.job == job)
    return list(uow.session.scalars(stmt))


def last_runs(uow: UnitOfWork, jobs: list[str], per_job: int) -> dict[str, list[JobRun]]:
    """The newest ``per_job`` runs of each job (one index range per job on (job, started_at))."""
    return {job: list(uow.session.scalars(
        sa.select(JobRun).where(JobRun.job == job).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(per_job)))
        for job in jobs}


def run_in_slot(uow: UnitOfWork, job: str, slot: datetime) -> JobRun | None:
    """The run that claimed (job, slot), if any: a requested run's slot is the moment of the request."""
    return uow.session.scalars(sa.select(JobRun).where(JobRun.job == job, JobRun.slot == slot)).first()


def data_quality_page(
    uow: UnitOfWork, *, reason: str | None, after: uuid.UUID | None, limit: int
) -> list[tuple[uuid.UUID, list[DataQualityIssue]]]:
    """Up to ``limit`` flagged patients in id order after ``after``, each with all its issues."""
    patients = sa.select(DataQualityIssue.patient_id).distinct().order_by(DataQualityIssue.patient_id).limit(limit)
    if reason is not None:
        patients = patients.where(DataQualityIssue.reason == reason)
    if after is not None:
        patients = patients.where(DataQualityIssue.patient_id > after)
    ids = list(uow.session.scalars(patients))
    if not ids:
        return []
    rows = uow.session.scalars(
        sa.select(DataQualityIssue).where(DataQualityIssue.patient_id.in_(ids))
        .order_by(DataQualityIssue.patient_id, DataQualityIssue.reason)
    ).all()
    grouped: dict[uuid.UUID, list[DataQualityIssue]] = {pid: [] for pid in ids}
    for row in rows:
        grouped[row.patient_id].append(row)
    return [(pid, issues) for pid, issues in grouped.items() if issues]
