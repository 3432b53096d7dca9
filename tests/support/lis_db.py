"""Read back what the LIS consumer stored (tests assert on resulting state)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import LabOrder, LabResult, LisMessage, MRN_SYSTEM, Patient, PatientIdentifier


def messages(*, pubsub_message_id: str | None = None, ce_source: str | None = None, ce_id: str | None = None) -> list[Any]:
    """Rows of one delivery. Pub/Sub ids are unique per topic only: pass ``ce_source`` with them when
    several topics (or emulator runs, which restart ids at 1) share the database."""
    with unit_of_work() as uow:
        stmt = sa.select(LisMessage.__table__).order_by(LisMessage.part)
        if pubsub_message_id is not None:
            stmt = stmt.where(LisMessage.pubsub_message_id == pubsub_message_id)
            if ce_source is not None:
                stmt = stmt.where(LisMessage.ce_source == ce_source)
        else:
            stmt = stmt.where(LisMessage.ce_source == ce_source, LisMessage.ce_id == ce_id)
        return list(uow.session.execute(stmt).all())


def message(message_id: uuid.UUID) -> Any:
    with unit_of_work() as uow:
        return uow.session.execute(sa.select(LisMessage.__table__).where(LisMessage.id == message_id)).one()


def patient_id_by_identifier(system: str, value: str) -> uuid.UUID | None:
    with unit_of_work() as uow:
        return uow.session.execute(
            sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.system == system, PatientIdentifier.value == value)
        ).scalar_one_or_none()


def patient(patient_id: uuid.UUID) -> dict[str, Any]:
    with unit_of_work() as uow:
        row = uow.session.execute(sa.select(Patient.__table__).where(Patient.id == patient_id)).one()
        ids = uow.session.execute(
            sa.select(PatientIdentifier.system, PatientIdentifier.value, PatientIdentifier.type)
            .where(PatientIdentifier.patient_id == patient_id)
        ).all()
    out = dict(row._mapping)
    out["identifiers"] = {(i.value, i.system, i.type) for i in ids if i.system != MRN_SYSTEM}
    out["mrn_identifier"] = [i.value for i in ids if i.system == MRN_SYSTEM]
    return out


def orders(patient_id: uuid.UUID) -> list[dict[str, Any]]:
    with unit_of_work() as uow:
        rows = uow.session.execute(
            sa.select(LabOrder.__table__).where(LabOrder.patient_id == patient_id).order_by(LabOrder.created_at, LabOrder.id)
        ).all()
    return [dict(r._mapping) for r in rows]


def order_by_number(placer: str | None = None, filler: str | None = None) -> dict[str, Any] | None:
    with unit_of_work() as uow:
        stmt = sa.select(LabOrder.__table__)
        stmt = stmt.where(LabOrder.placer_number == placer) if placer else stmt.where(LabOrder.filler_number == filler)
        row = uow.session.execute(stmt).first()
    return dict(row._mapping) if row else None


def results(order_id: uuid.UUID) -> list[dict[str, Any]]:
    with unit_of_work() as uow:
        rows = uow.session.execute(
            sa.select(LabResult.__table__).where(LabResult.order_id == order_id).order_by(LabResult.result_key)
        ).all()
    return [dict(r._mapping) for r in rows]


def outbox_types(subject: uuid.UUID) -> list[str]:
    from shared.models import OutboxEvent  # noqa: PLC0415

    with unit_of_work() as uow:
        return list(uow.session.scalars(
            sa.select(OutboxEvent.type).where(OutboxEvent.subject == str(subject)).order_by(OutboxEvent.seq)
        ))
