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

The claim and the finish are SQL on a pg8000 connection of the process's pool (``shared.db.wire``),
no SQLAlchemy: a tick whose job needs no ORM (``outbox-sweep``, every minute, what wakes a jobs
instance scaled to zero) loads none. The claim is one statement (``_CLAIM``: the run and the lease)
in the driver pool's unit of work (``shared.db.driver_uow``: its ``BEGIN`` in the same round trip,
then ``COMMIT``, a rollback on any error); a run of a busy job is
marked ``skipped`` in that transaction (``_SKIPPED``). The finish is one statement (``_FINISH``: the
outcome and the lease's release), atomic on its own.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.db import driver_connection, is_transient_db_error, wire
from shared.db.driver_uow import driver_unit_of_work
from shared.ids import uuid4
from shared.instants import utcnow
from shared.jobs import registry
from shared.jobs.context import JobContext, JobRetry, LeaseLost
from shared.log import get_logger
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


# The run and the lease in one statement. ``run``: the slot's row, inserted ``running``, or taken again
# when its last attempt ended in ``retry`` or is still ``running`` but started before the stale moment
# (now − budget − grace: its request has timed out); nothing returned means the slot is taken. ``lease``:
# the job's ``job_state`` row, inserted holding the lease, or updated to hold it when it is free (no
# holder, this run already, or a lease that ran out before now: ``excluded.updated_at`` is now); its
# cursor comes back only when the lease was taken. The parts of one statement see one snapshot, so the
# lease is one upsert, where the ORM's claim inserted a free row and then updated it.
_CLAIM = """\
WITH run AS (
    INSERT INTO job_runs AS r (id, job, slot, trigger, event_id, status, attempt, started_at, counts)
    VALUES (%s::uuid, %s, %s::timestamptz, %s, %s, 'running', 1, %s::timestamptz, '{}'::jsonb)
    ON CONFLICT (job, slot) DO UPDATE
    SET status = 'running', attempt = r.attempt + 1, started_at = excluded.started_at, finished_at = NULL,
        error_code = NULL, counts = '{}'::jsonb, event_id = excluded.event_id, trigger = excluded.trigger
    WHERE r.status = 'retry' OR (r.status = 'running' AND r.started_at < %s::timestamptz)
    RETURNING r.id
), lease AS (
    INSERT INTO job_state AS s (job, holder, lease_until, updated_at)
    SELECT %s, run.id, %s::timestamptz, %s::timestamptz FROM run
    ON CONFLICT (job) DO UPDATE
    SET holder = excluded.holder, lease_until = excluded.lease_until, updated_at = excluded.updated_at
    WHERE s.holder IS NULL OR s.holder = excluded.holder OR s.lease_until < excluded.updated_at
    RETURNING s.cursor
)
SELECT run.id, EXISTS (SELECT 1 FROM lease) AS holds_lease, (SELECT cursor FROM lease) AS cursor FROM run"""

_SKIPPED = """\
UPDATE job_runs SET status = 'skipped', finished_at = %s::timestamptz, error_code = 'already_running'
WHERE id = %s::uuid"""

# The outcome and the lease's release (only while this run holds it), one statement: atomic without a
# transaction of its own.
_FINISH = """\
WITH run AS (
    UPDATE job_runs SET status = %s, finished_at = %s::timestamptz, counts = %s::jsonb, error_code = %s
    WHERE id = %s::uuid
)
UPDATE job_state SET holder = NULL, lease_until = NULL, updated_at = %s::timestamptz
WHERE job = %s AND holder = %s::uuid"""


def _claim(
    name: str, slot: datetime, trigger: str, event_id: str | None, budget: float
) -> tuple[uuid.UUID, bool, dict[str, Any] | None] | None:
    now = utcnow()
    lease = timedelta(seconds=budget + LEASE_GRACE_SECONDS)
    params = (uuid4(), name, slot, trigger, event_id, now, now - lease, name, now + lease, now)
    with driver_unit_of_work() as uow:  # BEGIN rides with the claim; COMMIT as the block ends
        rows = uow.rows(_CLAIM, params, pipelined=True)
        if not rows:
            return None
        run_id, holds_lease, cursor = rows[0]
        if not holds_lease:
            uow.rows(_SKIPPED, (now, run_id), pipelined=True)
            return run_id, False, None
        return run_id, True, cursor


def _finish(name: str, run_id: uuid.UUID, status: str, counts: dict[str, int], error_code: str | None) -> None:
    now = utcnow()
    with driver_connection() as con:  # autocommit: the one statement is its own transaction
        wire.execute(con, _FINISH, (status, now, json.dumps(dict(counts)), error_code, run_id, now, name, run_id),
                     pipelined=True)


def manual_slot() -> datetime:
    """The slot of a command-line run: now, to the microsecond (unique per run in practice)."""
    return utcnow()
