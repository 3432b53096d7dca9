"""order.requested / order.changed / order.cancelled → the HL7 order message for the LIS, published
to the outbound topic (`LIS_OUTBOUND_TOPIC`), which the MLLP adapter sends on (docs/lis.md §9).

The message is rendered from the order and patient as they are now (ORM^O01 or OML^O21 per
`LIS_ORDER_MESSAGE_TYPE`); MSH-10 is derived from the event id, so a redelivered event publishes
the same control id and the LIS deduplicates it. The ordering key is the patient id: one patient's
order messages reach the LIS in the order they were emitted. A failed publish is a RetryLater
(the broker redelivers); without LIS_OUTBOUND_TOPIC the events are acknowledged and ignored.
"""

from __future__ import annotations

import sqlalchemy as sa
from cloudevents.abstract import CloudEvent
from sqlalchemy.orm import selectinload

from shared.consumer import RetryLater
from shared.db import UnitOfWork
from shared.events import catalog
from shared.events.publishing import PublishError
from shared.jobs.worker import event_data
from shared.log import get_logger
from shared.mllp.order_message import Endpoints, OutboundOrder, PatientIdentity, render_order
from shared.models import MRN_SYSTEM, LabOrder, Patient
from shared.settings import get_settings

log = get_logger("patient_mgt.jobs")

ACTIONS = {catalog.ORDER_REQUESTED: "new", catalog.ORDER_CHANGED: "change", catalog.ORDER_CANCELLED: "cancel"}


def _identity(patient: Patient) -> PatientIdentity:
    identifiers = [(patient.mrn, MRN_SYSTEM, "MR")]
    identifiers += [(i.value, i.system, i.type) for i in patient.identifiers if (i.value, i.system) != (patient.mrn, MRN_SYSTEM)]
    return PatientIdentity(tuple(identifiers), patient.family, tuple(patient.given or ()), patient.birth_date, patient.sex)


def render_for_event(uow: UnitOfWork, event_type: str, event_id: str, order_id: object) -> bytes | None:
    """The order message for one event, or None when the order is gone."""
    order = uow.session.scalar(sa.select(LabOrder).where(LabOrder.id == order_id))
    if order is None:
        return None
    patient = uow.session.scalar(sa.select(Patient).where(Patient.id == order.patient_id).options(selectinload(Patient.identifiers)))
    if patient is None:
        return None
    settings = get_settings()
    outbound = OutboundOrder(
        action=ACTIONS[event_type], control_id=event_id.replace("-", "")[:20], placer_number=order.placer_number or "",
        placer_namespace=order.placer_namespace, patient=_identity(patient), code=order.code,
        code_display=order.code_display, code_system=order.code_system, filler_number=order.filler_number,
        filler_namespace=order.filler_namespace, priority=order.priority, ordered_at=order.ordered_at, notes=order.notes,
    )
    return render_order(outbound, settings.lis_order_message_type,
                        Endpoints(receiving_application=settings.lis_receiving_application,
                                  receiving_facility=settings.lis_receiving_facility))


def send_order_to_lis(uow: UnitOfWork, event: CloudEvent) -> str:
    settings = get_settings()
    if not settings.lis_outbound_topic:
        return "ignored"  # no LIS link configured
    data = event_data(event, catalog.OrderEvent)
    if data is None:
        return "ignored"
    message = render_for_event(uow, event["type"], str(event["id"]), data.order_id)
    if message is None:
        log.warning("order for the LIS no longer exists", extra={"fields": {"order_id": str(data.order_id)}})
        return "ignored"
    from shared.events.publishing.pubsub_sink import publish_message  # noqa: PLC0415
    from shared.mllp.publish import topic_path  # noqa: PLC0415

    try:
        publish_message(topic_path(settings.lis_outbound_topic, settings.google_cloud_project), message,
                        {"content-type": "application/hl7-v2", "ce-id": str(event["id"]), "ce-type": str(event["type"])},
                        ordering_key=str(data.patient_id), timeout=settings.publish_timeout_seconds)
    except PublishError as exc:
        raise RetryLater(exc.code) from None
    log.info("order published for the LIS", extra={"fields": {"order_id": str(data.order_id), "event_type": event["type"]}})
    return "published"
