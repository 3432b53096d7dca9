"""The ``lis-reconcile`` job: an order with no result long after it was placed is overdue.

An order is overdue when it is still open (not cancelled, final or corrected), has no result, and
was placed (``ordered_at``, else when we received it) more than ``LIS_ORDER_OVERDUE_HOURS`` ago.
Each overdue order gets one ``org.patientmgt.order.overdue.v1`` event, ever: the claim is a row
in ``order_overdue_notices`` (primary key: the order) inserted in the same transaction as the
outbox row, so two runs, a retried run or a crash in between cannot emit it twice.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import SYSTEM_JOBS
from shared.db import unit_of_work
from shared.events import catalog
from shared.events.outbox import emit
from shared.jobs.context import JobContext, JobResult
from shared.models import LabOrder, LabResult
from shared.models.base import utcnow
from shared.models import OrderOverdueNotice
from shared.settings import get_settings

CLOSED_STATUSES = ("cancelled", "final", "corrected")
BATCH_SIZE = 200

placed_at = sa.func.coalesce(LabOrder.ordered_at, LabOrder.created_at)


def run(ctx: JobContext) -> JobResult:
    hours = get_settings().lis_order_overdue_hours
    while not ctx.out_of_time():
        if _batch(ctx, hours) < BATCH_SIZE:
            return JobResult(complete=True)
    return JobResult(complete=False)


def _batch(ctx: JobContext, hours: int) -> int:
    cutoff = utcnow() - timedelta(hours=hours)
    with unit_of_work() as uow:
        orders = uow.session.execute(
            sa.select(LabOrder.id, LabOrder.patient_id, LabOrder.ordered_at)
            .where(
                LabOrder.status.not_in(CLOSED_STATUSES),
                placed_at < cutoff,
                ~sa.exists().where(LabResult.order_id == LabOrder.id),
                ~sa.exists().where(OrderOverdueNotice.order_id == LabOrder.id),
            )
            .order_by(placed_at, LabOrder.id)
            .limit(BATCH_SIZE)
            .with_for_update(of=LabOrder, skip_locked=True)
        ).all()
        claimed = []
        if orders:
            # The claim first: an order another transaction already noticed is simply not returned.
            claimed = uow.session.execute(
                pg_insert(OrderOverdueNotice)
                .values([{"order_id": o.id, "patient_id": o.patient_id, "detected_at": utcnow()} for o in orders])
                .on_conflict_do_nothing()
                .returning(OrderOverdueNotice.order_id)
            ).scalars().all()
        emitted = []
        claimed_ids = set(claimed)
        for order in (o for o in orders if o.id in claimed_ids):
            event_id = emit(uow, catalog.ORDER_OVERDUE, order.patient_id, catalog.OrderOverdue(
                patient_id=order.patient_id, order_id=order.id, ordered_at=order.ordered_at, overdue_hours=hours))
            uow.session.execute(sa.update(OrderOverdueNotice).where(OrderOverdueNotice.order_id == order.id)
                                .values(event_id=event_id))
            emitted.append(order.patient_id)
        if emitted:
            audit.record(uow, SYSTEM_JOBS, "jobs.lis_reconcile.overdue", emitted,
                         details={"orders": len(emitted), "run_id": str(ctx.run_id)})
    ctx.add("orders_overdue", len(emitted))
    return len(orders)

