"""Run a job at most once per (job, slot), with run history: the one code path for ticks and the CLI.

1. Claim: ``INSERT INTO job_runs … ON CONFLICT (job, slot) DO UPDATE … WHERE status = 'retry'
   OR (status = 'running' AND stale)``. Nothing returned means the slot is taken: a duplicate tick.
   Only a run that ended in a transient fault (``retry``) or died without a trace (``running`` past
   its lease) can be claimed again.
2. Lease: in the same transaction the run takes the job's lease in ``job_state`` (only one run of
   a job works at a time; a slot whose job is busy is recorded as ``skipped``) and reads its cursor.
3. Work: the job runs in its own transactions, within the time budget.
4. Finish: the outcome (status, counts, a safe error code) is recorded and the lease released.

A transient database fault (or a job's ``JobRetry``) marks the run ``retry`` and raises
``JobRetry``: the caller answers 5xx and a redelivery of the tick claims the slot again. Any other
failure is recorded as ``failed`` with the exception's type name (never its message).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.db import is_transient_db_error, unit_of_work
from shared.jobs import registry
from shared.jobs.context import JobContext, JobRetry, LeaseLost
from shared.log import get_logger
from shared.models.base import utcnow
from shared.models.job_runs import JobRun, JobState
from shared.settings import get_settings
from shared.telemetry.outcomes import record_job_run

log = get_logger("patient_mgt.jobs")

# A run still "running" this long after its budget ran out is dead (its request has timed out).
LEASE_GRACE_SECONDS = 60.0


@dataclass
class RunOutcome:
    job: str
    status: str  # unknown_job | duplicate | skipped | succeeded | incomplete | failed
    run_id: uuid.UUID | None = None
    slot: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error_code: str | None = None


def run_job(
    name: str,
    *,
    slot: datetime,
    trigger: str,
    event_id: str | None = None,
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunOutcome:
    job = registry.get(name)
    if job is None:
        log.error("unknown job; nothing run", extra={"fields": {"job": name[:64], "trigger": trigger}})
        return RunOutcome(job=name, status="unknown_job")
    budget = budget_seconds if budget_seconds is not None else get_settings().job_time_budget_seconds
    fields: dict[str, Any] = {"job": name, "slot": slot.isoformat(), "trigger": trigger}

    try:
        claimed = _claim(name, slot, trigger, event_id, budget)
    except Exception as exc:
        if is_transient_db_error(exc):
            log.warning("job not claimed: database unavailable", extra={"fields": fields})
            raise JobRetry("database_unavailable") from None
        raise
    if claimed is None:
        log.info("job slot already claimed; not run again", extra={"fields": fields})
        return RunOutcome(job=name, status="duplicate", slot=slot)
    run_id, holds_lease, cursor = claimed
    fields["run_id"] = str(run_id)
    if not holds_lease:
        log.warning("job skipped: another run of it is in progress", extra={"fields": fields})
        return RunOutcome(job=name, status="skipped", run_id=run_id, slot=slot, error_code="already_running")

    ctx = JobContext(job=name, run_id=run_id, slot=slot, budget_seconds=budget, cursor=cursor, clock=clock)
    log.info("job started", extra={"fields": fields})
    retry: JobRetry | None = None
    try:
        result = job.load()(ctx)
        status = "failed" if result.error_code else ("succeeded" if result.complete else "incomplete")
        error_code = result.error_code
    except JobRetry as exc:
        retry, status, error_code = exc, "retry", exc.code
    except LeaseLost:
        status, error_code = "failed", "lease_lost"
    except Exception as exc:
        if is_transient_db_error(exc):
            retry = JobRetry("database_unavailable")
            status, error_code = "retry", retry.code
        else:
            status, error_code = "failed", type(exc).__name__[:100]
            log.error("job failed", exc_info=True, extra={"fields": {**fields, "error_code": error_code}})

    outcome = RunOutcome(job=name, status=status, run_id=run_id, slot=slot, counts=dict(ctx.counts), error_code=error_code)
    try:
        _finish(name, run_id, status, ctx.counts, error_code)
    except Exception as exc:
        if not is_transient_db_error(exc):
            raise
        # The run stays "running" until its lease goes stale; a redelivery can then claim it again.
        log.warning("job outcome not recorded: database unavailable", extra={"fields": fields})
        raise JobRetry("database_unavailable") from None
    record_job_run(name, status, ctx.clock() - ctx.started)
    log_fields = {**fields, "status": status, "counts": ctx.counts, "error_code": error_code}
    if retry is not None:
        log.warning("job hit a transient fault; the tick may be retried", extra={"fields": log_fields})
        raise retry
    (log.warning if status == "failed" else log.info)("job finished", extra={"fields": log_fields})
    return outcome


def _claim(
    name: str, slot: datetime, trigger: str, event_id: str | None, budget: float
) -> tuple[uuid.UUID, bool, dict[str, Any] | None] | None:
    now = utcnow()
    stale_before = now - timedelta(seconds=budget + LEASE_GRACE_SECONDS)
    with unit_of_work() as uow:
        insert = pg_insert(JobRun).values(
            id=uuid.uuid4(), job=name, slot=slot, trigger=trigger, event_id=event_id,
            status="running", attempt=1, started_at=now, counts={},
        )
        run_id = uow.session.execute(
            insert.on_conflict_do_update(
                index_elements=[JobRun.job, JobRun.slot],
                set_={"status": "running", "attempt": JobRun.attempt + 1, "started_at": now, "finished_at": None,
                      "error_code": None, "counts": {}, "event_id": insert.excluded.event_id,
                      "trigger": insert.excluded.trigger},
                where=sa.or_(JobRun.status == "retry",
                             sa.and_(JobRun.status == "running", JobRun.started_at < stale_before)),
            ).returning(JobRun.id)
        ).scalar()
        if run_id is None:
            return None
        uow.session.execute(pg_insert(JobState).values(job=name, updated_at=now).on_conflict_do_nothing())
        lease = uow.session.execute(
            sa.update(JobState)
            .where(JobState.job == name,
                   sa.or_(JobState.holder.is_(None), JobState.holder == run_id, JobState.lease_until < now))
            .values(holder=run_id, lease_until=now + timedelta(seconds=budget + LEASE_GRACE_SECONDS), updated_at=now)
            .returning(JobState.cursor)
        ).first()
        if lease is None:
            uow.session.execute(
                sa.update(JobRun).where(JobRun.id == run_id)
                .values(status="skipped", finished_at=now, error_code="already_running")
            )
            return run_id, False, None
        return run_id, True, lease.cursor


def _finish(name: str, run_id: uuid.UUID, status: str, counts: dict[str, int], error_code: str | None) -> None:
    now = utcnow()
    with unit_of_work() as uow:
        uow.session.execute(
            sa.update(JobRun).where(JobRun.id == run_id)
            .values(status=status, finished_at=now, counts=dict(counts), error_code=error_code)
        )
        uow.session.execute(
            sa.update(JobState).where(JobState.job == name, JobState.holder == run_id)
            .values(holder=None, lease_until=None, updated_at=now)
        )


def manual_slot() -> datetime:
    """The slot of a command-line run: now, to the microsecond (unique per run in practice)."""
    return utcnow()
