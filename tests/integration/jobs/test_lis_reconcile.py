"""lis-reconcile against real PostgreSQL: an overdue order gets one order-overdue event, ever."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.jobs.runner import run_job
from shared.models import OutboxEvent
from shared.models.base import utcnow
from shared.models.jobs import OrderOverdueNotice
from shared.settings import get_settings
from tests.support.jobs_data import make_order, make_patient, unique_minute


def _overdue_events(order_ids: list[uuid.UUID]) -> dict[str, list[OutboxEvent]]:
    with unit_of_work() as uow:
        rows = uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == catalog.ORDER_OVERDUE)
                                   .where(OutboxEvent.data["order_id"].astext.in_([str(o) for o in order_ids]))).all()
    found: dict[str, list[OutboxEvent]] = {}
    for r in rows:
        found.setdefault(r.data["order_id"], []).append(r)
    return found


def test_overdue_orders_get_one_event_each_and_others_none(database_url):
    hours = get_settings().lis_order_overdue_hours
    long_ago = utcnow() - timedelta(hours=hours + 2)
    with unit_of_work() as uow:
        pid = make_patient(uow)
        overdue = make_order(uow, pid, ordered_at=long_ago)
        resulted = make_order(uow, pid, ordered_at=long_ago, with_result=True)
        cancelled = make_order(uow, pid, ordered_at=long_ago, status="cancelled")
        recent = make_order(uow, pid, ordered_at=utcnow() - timedelta(hours=hours - 1))
    slot = unique_minute()
    first = run_job("lis-reconcile", slot=slot, trigger="schedule")
    assert first.status == "succeeded" and first.counts["orders_overdue"] >= 1
    again = run_job("lis-reconcile", slot=slot + timedelta(hours=1), trigger="schedule")
    assert again.status == "succeeded"

    events = _overdue_events([overdue, resulted, cancelled, recent])
    assert list(events) == [str(overdue)]
    [event] = events[str(overdue)]
    assert event.subject == str(pid)
    assert event.data == {"patient_id": str(pid), "order_id": str(overdue), "ordered_at": long_ago.isoformat().replace("+00:00", "Z"),
                          "overdue_hours": hours}
    with unit_of_work() as uow:
        notice = uow.session.get(OrderOverdueNotice, overdue)
        assert notice.event_id == event.id and notice.patient_id == pid


def test_the_once_per_order_rule_is_a_constraint(database_url):
    """Even a run that finds the order again (a notice written behind its back) emits nothing more."""
    hours = get_settings().lis_order_overdue_hours
    with unit_of_work() as uow:
        pid = make_patient(uow)
        order = make_order(uow, pid, ordered_at=None)  # placed = received, long ago below
        uow.session.execute(sa.text("UPDATE lab_orders SET created_at = :t WHERE id = :id"),
                            {"t": utcnow() - timedelta(hours=hours + 5), "id": order})
    run_job("lis-reconcile", slot=unique_minute(), trigger="schedule")
    with unit_of_work() as uow:
        pk = sa.select(sa.func.count()).select_from(OrderOverdueNotice).where(OrderOverdueNotice.order_id == order)
        assert uow.session.scalar(pk) == 1
        duplicate = sa.insert(OrderOverdueNotice).values(order_id=order, patient_id=pid, detected_at=utcnow())
        try:
            with uow.session.begin_nested():
                uow.session.execute(duplicate)
            raised = False
        except sa.exc.IntegrityError:
            raised = True
    assert raised
    assert len(_overdue_events([order])[str(order)]) == 1
