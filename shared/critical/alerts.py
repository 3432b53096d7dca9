"""A critical result's alert: raised once per result, escalated once, acknowledged once.

Every step writes its audit row and its outbox event in the caller's transaction; uniqueness and
each transition are conditional writes (``ON CONFLICT``, ``UPDATE … WHERE status``), never a read
followed by a write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import SYSTEM_JOBS, SYSTEM_NOTIFY, Principal
from shared.critical.rules import critical_reason, route_for, ward_from_hl7
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.events import catalog
from shared.events.outbox import emit
from shared.ids import uuid4
from shared.models import CriticalAlert, CriticalAlertMessage, LabResult, LisMessage
from shared.models.base import utcnow
from shared.services.changed import record_change
from shared.settings import get_settings


def _event(alert: CriticalAlert | sa.Row) -> catalog.CriticalAlertEvent:
    return catalog.CriticalAlertEvent(alert_id=alert.id, patient_id=alert.patient_id, result_id=alert.result_id,
                                      order_id=alert.order_id)


def raise_alerts(uow: UnitOfWork, result_ids: Iterable[uuid.UUID], *, now: datetime | None = None) -> list[uuid.UUID]:
    """An alert for each critical result among ``result_ids`` that has none yet; returns the new alerts' ids."""
    settings = get_settings()
    now = now or utcnow()
    rows = uow.session.execute(
        sa.select(LabResult.id, LabResult.patient_id, LabResult.order_id, LabResult.code, LabResult.value_type,
                  LabResult.value, LabResult.abnormal_flags, LisMessage.sending_facility, LisMessage.raw,
                  LisMessage.content_format)
        .outerjoin(LisMessage, LisMessage.id == LabResult.lis_message_id)
        .where(LabResult.id.in_(list(result_ids)))
    ).all()
    raised: list[uuid.UUID] = []
    for row in rows:
        reason = critical_reason(row.abnormal_flags or [], row.value_type, row.value, row.code, settings.critical_ranges)
        if reason is None:
            continue
        ward = ward_from_hl7(row.raw) if row.content_format == "hl7v2" else None
        route, _target = route_for(settings.critical_alert_routes, row.sending_facility, ward)
        alert_id = uow.session.execute(
            pg_insert(CriticalAlert).values(
                id=uuid4(), result_id=row.id, patient_id=row.patient_id, order_id=row.order_id, code=row.code,
                reason=reason, facility=row.sending_facility, ward=ward, route=route, status="open",
                escalate_at=now + timedelta(seconds=settings.critical_alert_escalate_after_seconds), version=1,
                created_at=now, updated_at=now,
            ).on_conflict_do_nothing(index_elements=[CriticalAlert.result_id]).returning(CriticalAlert.id)
        ).scalar_one_or_none()
        if alert_id is None:
            continue  # raised before (a redelivery, or the same result corrected and still critical)
        audit.record(uow, SYSTEM_NOTIFY, "critical_alert.raise", [row.patient_id],
                     details={"alert_id": str(alert_id), "result_id": str(row.id), "reason": reason, "route": route})
        emit(uow, catalog.RESULT_CRITICAL, row.patient_id, catalog.CriticalAlertEvent(
            alert_id=alert_id, patient_id=row.patient_id, result_id=row.id, order_id=row.order_id))
        raised.append(alert_id)
    return raised


def escalate_due(uow: UnitOfWork, *, now: datetime | None = None, limit: int = 100) -> list[uuid.UUID]:
    """Escalate open alerts past their time (each once; concurrent runs skip each other's rows)."""
    now = now or utcnow()
    due = list(uow.session.scalars(
        sa.select(CriticalAlert).where(CriticalAlert.status == "open", CriticalAlert.escalated_at.is_(None),
                                       CriticalAlert.escalate_at <= now)
        .order_by(CriticalAlert.escalate_at, CriticalAlert.id).limit(limit).with_for_update(skip_locked=True)
    ))
    for alert in due:
        alert.escalated_at = now
        record_change(uow, alert, SYSTEM_JOBS, "critical_alert.escalate", catalog.CRITICAL_ALERT_ESCALATED, _event(alert),
                      details={"alert_id": str(alert.id), "route": alert.route}, now=now)
    return [a.id for a in due]


def _load(uow: UnitOfWork, alert_id: uuid.UUID) -> CriticalAlert:
    alert = uow.session.get(CriticalAlert, alert_id, populate_existing=True)
    if alert is None:
        raise NotFound("No critical alert with this id")
    return alert


def get_alert(uow: UnitOfWork, principal: Principal, alert_id: uuid.UUID) -> CriticalAlert:
    alert = _load(uow, alert_id)
    audit.record(uow, principal, "critical_alert.read", [alert.patient_id], details={"alert_id": str(alert_id)})
    return alert


def acknowledge(uow: UnitOfWork, principal: Principal, alert_id: uuid.UUID) -> tuple[CriticalAlert, bool]:
    """Acknowledge an open alert; (alert, True) the first time, (alert, False) when it already was (no new event)."""
    now = utcnow()
    changed = uow.session.execute(
        sa.update(CriticalAlert).where(CriticalAlert.id == alert_id, CriticalAlert.status == "open")
        .values(status="acknowledged", acknowledged_at=now, acknowledged_by=principal.name[:200], updated_at=now,
                version=CriticalAlert.version + 1)
        .returning(CriticalAlert.id)
    ).scalar_one_or_none()
    alert = _load(uow, alert_id)
    audit.record(uow, principal, "critical_alert.acknowledge", [alert.patient_id],
                 details={"alert_id": str(alert_id), "first": changed is not None})
    if changed is not None:
        emit(uow, catalog.CRITICAL_ALERT_ACKNOWLEDGED, alert.patient_id, _event(alert))
    return alert, changed is not None


def messages(uow: UnitOfWork, alert_id: uuid.UUID) -> list[CriticalAlertMessage]:
    return list(uow.session.scalars(
        sa.select(CriticalAlertMessage).where(CriticalAlertMessage.alert_id == alert_id).order_by(CriticalAlertMessage.created_at)))
