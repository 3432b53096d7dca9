"""The ``retention`` job: forget what is no longer needed, in batches, never the audit trail.

* ``processed_events`` (the consumers' dedupe inbox) older than 30 days: deleted. A redelivery
  that late is not a redelivery any platform makes (Knative retries for minutes, Pub/Sub keeps
  messages at most 7 days).
* ``job_runs`` finished more than 30 days ago: deleted (the run history is an operator's view).
* Raw LIS payloads (``lis_messages.raw``) received more than ``LIS_RAW_RETENTION_DAYS`` ago: set to
  NULL; the row and its metadata (hash, size, control id, status, …) stay. The walk keeps a cursor
  (received_at, id) so later runs do not rescan purged rows; each purge is audited with the
  patients whose messages lost their payload.

* FHIR Bulk Data exports: the files of exports past their ``expires_at`` are deleted (the export row
  stays, its status URL answers 404); an export still unfinished ``FHIR_EXPORT_RETENTION_HOURS`` after
  its last progress (its event dead-lettered, say) is marked failed (``abandoned``) and its files go too.

``audit_log`` is not touched (it is append-only by trigger anyway). Each batch is one transaction,
so a run stopped by its budget keeps what it did and the next run carries on.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from shared import audit
from shared.auth import SYSTEM_JOBS
from shared.db import unit_of_work
from shared.jobs.context import JobContext, JobResult
from shared.models import FhirExport, FhirExportFile, LisMessage, ProcessedEvent
from shared.models.base import utcnow
from shared.models import JobRun
from shared.settings import get_settings

PROCESSED_EVENTS_DAYS = 30
JOB_RUNS_DAYS = 30
BATCH_SIZE = 1000


def run(ctx: JobContext) -> JobResult:
    now = utcnow()
    steps = (
        lambda: _purge_processed_events(ctx, now - timedelta(days=PROCESSED_EVENTS_DAYS)),
        lambda: _purge_job_runs(ctx, now - timedelta(days=JOB_RUNS_DAYS)),
        lambda: _purge_lis_raw(ctx, now - timedelta(days=get_settings().lis_raw_retention_days)),
        lambda: _purge_fhir_exports(ctx, now, now - timedelta(hours=get_settings().fhir_export_retention_hours)),
    )
    for step in steps:
        while True:
            if ctx.out_of_time():
                return JobResult(complete=False)
            if not step():
                break
    return JobResult(complete=True)


def _purge_processed_events(ctx: JobContext, cutoff: datetime) -> bool:
    """One batch; True when a full batch was deleted (there may be more)."""
    with unit_of_work() as uow:
        oldest = (
            sa.select(ProcessedEvent.consumer, ProcessedEvent.source, ProcessedEvent.event_id)
            .where(ProcessedEvent.processed_at < cutoff)
            .order_by(ProcessedEvent.processed_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        )
        deleted = uow.session.execute(
            sa.delete(ProcessedEvent).where(
                sa.tuple_(ProcessedEvent.consumer, ProcessedEvent.source, ProcessedEvent.event_id).in_(oldest)
            )
        ).rowcount
    ctx.add("processed_events_deleted", deleted)
    return deleted == BATCH_SIZE


def _purge_job_runs(ctx: JobContext, cutoff: datetime) -> bool:
    with unit_of_work() as uow:
        oldest = (
            sa.select(JobRun.id)
            .where(JobRun.started_at < cutoff, JobRun.status != "running")
            .order_by(JobRun.started_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        )
        deleted = uow.session.execute(sa.delete(JobRun).where(JobRun.id.in_(oldest))).rowcount
    ctx.add("job_runs_deleted", deleted)
    return deleted == BATCH_SIZE


def _purge_lis_raw(ctx: JobContext, cutoff: datetime) -> bool:
    after = (ctx.cursor or {}).get("lis_raw_after")
    with unit_of_work() as uow:
        stmt = (
            sa.select(LisMessage.id, LisMessage.received_at, LisMessage.raw.is_not(None).label("has_raw"), LisMessage.patient_id)
            .where(LisMessage.received_at < cutoff)
            .order_by(LisMessage.received_at, LisMessage.id)
            .limit(BATCH_SIZE)
        )
        if after:
            stmt = stmt.where(sa.tuple_(LisMessage.received_at, LisMessage.id)
                              > sa.tuple_(sa.literal(datetime.fromisoformat(after[0])), sa.literal(uuid.UUID(after[1]))))
        rows = uow.session.execute(stmt).all()
        if not rows:
            return False
        to_purge = [r.id for r in rows if r.has_raw]
        if to_purge:
            patients = uow.session.scalars(
                sa.update(LisMessage).where(LisMessage.id.in_(to_purge), LisMessage.raw.is_not(None))
                .values(raw=None).returning(LisMessage.patient_id)
            ).all()
            audit.record(uow, SYSTEM_JOBS, "jobs.retention.lis_raw_purged", [p for p in patients if p is not None],
                         details={"messages": len(patients), "run_id": str(ctx.run_id)})
            ctx.add("lis_raw_purged", len(patients))
        last = rows[-1]
        ctx.save_cursor(uow, {**(ctx.cursor or {}), "lis_raw_after": [last.received_at.isoformat(), str(last.id)]})
    return len(rows) == BATCH_SIZE


EXPORT_FILES_BATCH = 20  # files (each up to 100,000 NDJSON lines in chunks) per transaction


def _purge_fhir_exports(ctx: JobContext, now: datetime, stale_before: datetime) -> bool:
    """One batch of expired or abandoned exports' files; True when there may be more."""
    with unit_of_work() as uow:
        abandoned = uow.session.execute(
            sa.update(FhirExport).where(FhirExport.status.in_(("accepted", "in-progress")),
                                        FhirExport.updated_at < stale_before)
            .values(status="failed", error="abandoned", lease_until=None, expires_at=now, updated_at=now)).rowcount
        ctx.add("fhir_exports_abandoned", abandoned)
        files = (sa.select(FhirExportFile.id).join(FhirExport, FhirExport.id == FhirExportFile.export_id)
                 .where(FhirExport.expires_at <= now).limit(EXPORT_FILES_BATCH))
        deleted = uow.session.execute(sa.delete(FhirExportFile).where(FhirExportFile.id.in_(files))).rowcount
    ctx.add("fhir_export_files_deleted", deleted)
    return deleted == EXPORT_FILES_BATCH
