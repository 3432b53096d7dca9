"""The default worker: broker events routed to the jobs function by Triggers (knative/app/triggers.yaml).

Each handler runs inside the consumer boundary (``shared.consumer``): one transaction, after the
event's (consumer, source, id) claim, so a redelivery has no second effect. Data that does not fit
the catalog's model is acknowledged as ``ignored`` (a retry cannot fix it) and logged by type only.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import sqlalchemy as sa
from cloudevents.abstract import CloudEvent
from pydantic import ValidationError

from shared.db import UnitOfWork
from shared.events import catalog
from shared.jobs import data_quality
from shared.log import get_logger
from shared.models.base import utcnow
from shared.models import OrderOverdueNotice

log = get_logger("patient_mgt.jobs.worker")
D = TypeVar("D", bound=catalog.EventData)


def event_data(event: CloudEvent, model: type[D]) -> D | None:
    raw: Any = event.get_data()
    try:
        if isinstance(raw, (bytes, bytearray)):
            raw = json.loads(bytes(raw).decode("utf-8"))
        return model.model_validate(raw)
    except (ValueError, ValidationError):
        log.warning("event data does not match its type; ignored", extra={"fields": {"event_type": event["type"], "event_id": event["id"]}})
        return None


def recheck_patient(uow: UnitOfWork, event: CloudEvent) -> str:
    """patient.updated, lis.patient.updated, lis.patient.created: re-check that patient's data quality."""
    model = catalog.CATALOG[event["type"]][0]
    data = event_data(event, model)
    if data is None:
        return "ignored"
    data_quality.check_patients(uow, [data.patient_id])  # type: ignore[attr-defined]
    return "rechecked"


def recheck_merged(uow: UnitOfWork, event: CloudEvent) -> str:
    """patient.merged: the source leaves the report, the target (with its new data) is re-checked.

    The merge service moves identifiers, history, orders and results in its own transaction, so
    there is no history left to move here.
    """
    data = event_data(event, catalog.PatientMerged)
    if data is None:
        return "ignored"
    data_quality.check_patients(uow, [data.patient_id, data.target_id])
    return "rechecked"


def recheck_unmerged(uow: UnitOfWork, event: CloudEvent) -> str:
    """patient.unmerged: the former source is a patient again (back in the report), the target re-checked."""
    data = event_data(event, catalog.PatientUnmerged)
    if data is None:
        return "ignored"
    data_quality.check_patients(uow, [data.patient_id, data.target_id])
    return "rechecked"


def record_overdue(uow: UnitOfWork, event: CloudEvent) -> str:
    """order.overdue: the operator's record. The notice row exists (lis-reconcile wrote it with the
    event); mark it received and log the ids for the operator's alerting."""
    data = event_data(event, catalog.OrderOverdue)
    if data is None:
        return "ignored"
    marked = uow.session.execute(
        sa.update(OrderOverdueNotice)
        .where(OrderOverdueNotice.order_id == data.order_id, OrderOverdueNotice.recorded_at.is_(None))
        .values(recorded_at=utcnow())
    ).rowcount
    log.warning("lab order overdue: no result", extra={"fields": {
        "order_id": str(data.order_id), "patient_id": str(data.patient_id), "overdue_hours": data.overdue_hours}})
    return "recorded" if marked else "logged"
