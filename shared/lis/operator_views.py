"""More of the operator's view of the LIS feed, for the console: the last 24 hours hour by hour, the
oldest message still waiting for an operator, a message's status history and what it touched.

Reads only. Each query runs on an index: ``received_at`` and ``processed_at`` ranges, the status
index, the audit trail's partial index on replays (``ix_audit_log_lis_replay``), and a patient's
orders (their results by order). Callers audit what they show (the console's message page goes
through ``operator.get_message``, which audits the read with the patient concerned).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from shared.db import UnitOfWork
from shared.lis.operator import LAG_STATUSES
from shared.lis.ordering import control_sort_key
from shared.models import AuditEntry, LabOrder, LabResult, LisMessage
from shared.models.base import utcnow

WAITING = ("quarantined", "failed")  # not applied; an operator must act (fix and replay)


@dataclass(frozen=True)
class Hour:
    start: datetime
    received: int
    lag_p95: float | None


def last_24_hours(uow: UnitOfWork, now: datetime | None = None) -> list[Hour]:
    """24 whole hours ending with the current one: messages received, and the lag p95 of the
    messages processed in each hour (same statuses as ``operator.status``'s lag)."""
    now = (now or utcnow()).astimezone(timezone.utc)
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=23)
    counts = dict(uow.session.execute(
        sa.select(_utc_hour(LisMessage.received_at), sa.func.count())
        .where(LisMessage.received_at >= first, LisMessage.received_at <= now).group_by(sa.text("1"))).all())
    lag = dict(uow.session.execute(
        sa.select(_utc_hour(LisMessage.processed_at),
                  sa.func.percentile_cont(0.95).within_group(LisMessage.lag_seconds))
        .where(LisMessage.processed_at >= first, LisMessage.processed_at <= now,
               LisMessage.status.in_(LAG_STATUSES), LisMessage.lag_seconds.is_not(None))
        .group_by(sa.text("1"))).all())
    hours = [first + timedelta(hours=i) for i in range(24)]
    return [Hour(start=h, received=int(counts.get(h.replace(tzinfo=None), 0)),
                 lag_p95=_seconds(lag.get(h.replace(tzinfo=None)))) for h in hours]


def _utc_hour(column: Any) -> Any:
    """The UTC hour as a naive timestamp, whatever the session's time zone."""
    return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def oldest_waiting(uow: UnitOfWork) -> Any | None:
    """The oldest message quarantined or failed (id, status, error_code, received_at), or None."""
    rows = [uow.session.execute(
        sa.select(LisMessage.id, LisMessage.status, LisMessage.error_code, LisMessage.received_at)
        .where(LisMessage.status == status).order_by(LisMessage.received_at, LisMessage.id).limit(1)).first()
        for status in WAITING]
    found = [r for r in rows if r is not None]
    return min(found, key=lambda r: r.received_at) if found else None


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    status: str
    by: str
    note: str  # "received", or "replayed from quarantined"


def status_history(uow: UnitOfWork, message: Any) -> list[StatusChange]:
    """Received (with the status it was first given), then every replay in the audit trail, oldest first.

    The first status is the ``from`` of the first replay (the row holds only the current one)."""
    replays = uow.session.execute(
        sa.select(AuditEntry.at, AuditEntry.principal, AuditEntry.details)
        .where(AuditEntry.action == "lis.message.replay",
               AuditEntry.details["lis_message_id"].astext == str(message.id))
        .order_by(AuditEntry.id)).all()
    first = replays[0].details.get("from") if replays else message.status
    history = [StatusChange(at=message.received_at, status=first, by="lis feed", note="received")]
    history += [StatusChange(at=r.at, status=r.details.get("to") or "?", by=r.principal,
                             note=f"replayed from {r.details.get('from')}") for r in replays]
    return history


def touched(uow: UnitOfWork, message: Any) -> tuple[list[Any], list[Any]]:
    """The orders and results whose current version this message wrote (ids, numbers, codes and
    statuses — no values), found through the message's patient: an order is listed when a field of
    it still holds this message's stamp (MSH-10, MSH-4), or when one of its results came from it."""
    if message.patient_id is None:
        return [], []
    results = uow.session.execute(
        sa.select(LabResult.id, LabResult.order_id, LabResult.code, LabResult.code_display, LabResult.status,
                  LabResult.version)
        .join(LabOrder, LabOrder.id == LabResult.order_id)
        .where(LabOrder.patient_id == message.patient_id, LabResult.lis_message_id == message.id)
        .order_by(LabResult.created_at, LabResult.id)).all()
    with_results = {r.order_id for r in results}
    key = [control_sort_key(message.control_id), message.sending_facility] if message.control_id else None
    candidates = uow.session.execute(
        sa.select(LabOrder.id, LabOrder.placer_number, LabOrder.filler_number, LabOrder.code, LabOrder.code_display,
                  LabOrder.status, LabOrder.lis_field_stamps)
        .where(LabOrder.patient_id == message.patient_id).order_by(LabOrder.created_at, LabOrder.id)).all()
    orders = [o for o in candidates if o.id in with_results
              or (key is not None and any(list(v[1:3]) == key for v in (o.lis_field_stamps or {}).values()))]
    return orders, list(results)
