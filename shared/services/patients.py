"""Patient use cases: register and read. Services take the unit of work and never commit."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import DuplicateIdentifier, NotFound
from shared.events import catalog
from shared.events.outbox import emit
from shared.models import MRN_SYSTEM, Patient, PatientIdentifier
from shared.models.base import utcnow
from shared.mrn import next_mrn
from shared.normalize import fold
from shared.schemas.patients import Patient as PatientResource
from shared.schemas.patients import PatientCreate


def to_resource(patient: Patient) -> PatientResource:
    return PatientResource.model_validate(
        {
            "id": patient.id,
            "mrn": patient.mrn,
            "status": patient.status,
            "merged_into": patient.merged_into,
            "name": {"family": patient.family, "given": patient.given, "prefix": patient.prefix, "suffix": patient.suffix},
            "birth_date": patient.birth_date,
            "sex": patient.sex,
            "identifiers": [{"system": i.system, "value": i.value, "type": i.type} for i in patient.identifiers],
            "phone": patient.phone,
            "email": patient.email,
            "address": patient.address,
            "preferred_language": patient.preferred_language,
            "timezone": patient.timezone,
            "communication": {"email": patient.comm_email, "sms": patient.comm_sms},
            "version": patient.version,
            "created_at": patient.created_at,
            "updated_at": patient.updated_at,
        }
    )


def claim_identifiers(uow: UnitOfWork, patient_id: uuid.UUID, identifiers: list[tuple[str, str, str | None]]) -> None:
    """Attach identifiers to a patient; the unique (system, value) constraint decides races.

    ``INSERT … ON CONFLICT DO NOTHING`` waits for a concurrent transaction holding the same
    identifier; if that one commits, our row is skipped and we name the patient that owns it.
    """
    now = utcnow()
    for system, value, id_type in identifiers:
        inserted = uow.session.execute(
            pg_insert(PatientIdentifier)
            .values(id=uuid.uuid4(), patient_id=patient_id, system=system, value=value, type=id_type, created_at=now)
            .on_conflict_do_nothing(index_elements=["system", "value"])
            .returning(PatientIdentifier.id)
        ).first()
        if inserted is None:
            owner = uow.session.scalar(
                sa.select(PatientIdentifier.patient_id).where(
                    PatientIdentifier.system == system, PatientIdentifier.value == value
                )
            )
            raise DuplicateIdentifier(
                "An identifier in the request already belongs to another patient",
                existing_patient_id=str(owner) if owner else None,
                identifier_system=system,
            )


def register_patient(uow: UnitOfWork, principal: Principal, data: PatientCreate, *, origin: str = "api") -> Patient:
    now = utcnow()
    patient = Patient(
        id=uuid.uuid4(),
        mrn=next_mrn(uow),
        status="active",
        family=data.name.family,
        given=list(data.name.given),
        prefix=list(data.name.prefix),
        suffix=list(data.name.suffix),
        family_norm=fold(data.name.family),
        first_given_norm=fold(data.name.given[0]) if data.name.given else "",
        birth_date=data.birth_date,
        sex=data.sex,
        phone=data.phone,
        email=str(data.email).lower() if data.email else None,
        address=data.address.model_dump() if data.address else None,
        preferred_language=data.preferred_language,
        timezone=data.timezone,
        comm_email=data.communication.email,
        comm_sms=data.communication.sms,
        source=origin,
        version=1,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(patient)
    uow.flush()
    claim_identifiers(
        uow,
        patient.id,
        [(MRN_SYSTEM, patient.mrn, "MR")] + [(i.system, i.value, i.type) for i in data.identifiers],
    )
    uow.session.refresh(patient, attribute_names=["identifiers"])
    audit.record(uow, principal, "patient.create", [patient.id])
    emit(uow, catalog.PATIENT_REGISTERED, patient.id,
         catalog.PatientRegistered(patient_id=patient.id, version=patient.version, origin=origin))  # type: ignore[arg-type]
    return patient


def load_patient(uow: UnitOfWork, patient_id: uuid.UUID, *, for_update: bool = False) -> Patient:
    stmt = sa.select(Patient).where(Patient.id == patient_id).options(selectinload(Patient.identifiers))
    if for_update:
        stmt = stmt.with_for_update()
    patient = uow.session.scalar(stmt)
    if patient is None:
        raise NotFound("No patient with this id")
    return patient


def get_patient(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID) -> Patient:
    patient = load_patient(uow, patient_id)
    audit.record(uow, principal, "patient.read", [patient.id])
    return patient
