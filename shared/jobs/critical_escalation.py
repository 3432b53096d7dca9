"""The ``critical-escalation`` job: a critical-result alert nobody acknowledged in time is escalated.

Each due alert gets ``escalated_at``, an audit row and one ``critical_alert.escalated`` event in one
transaction (``FOR UPDATE SKIP LOCKED``: overlapping runs never take the same alert); notify sends the
escalation to the route's ``escalate_to``. A tick first asks whether any alert is due
(``shared.critical.check``, SQL text): most find none and load no ORM.
"""

from __future__ import annotations

from shared.critical.check import any_escalation_due
from shared.db import unit_of_work
from shared.instants import utcnow
from shared.jobs.context import JobContext, JobResult

BATCH_SIZE = 100


def run(ctx: JobContext) -> JobResult:
    if not any_escalation_due(utcnow()):  # most ticks: one statement on the driver pool, no ORM loaded
        ctx.add("escalated", 0)
        return JobResult(complete=True)
    from shared.critical.alerts import escalate_due  # noqa: PLC0415 — the ORM, for alerts to escalate

    while not ctx.out_of_time():
        with unit_of_work() as uow:
            escalated = escalate_due(uow, limit=BATCH_SIZE)
        ctx.add("escalated", len(escalated))
        if len(escalated) < BATCH_SIZE:
            return JobResult(complete=True)
    return JobResult(complete=False)
