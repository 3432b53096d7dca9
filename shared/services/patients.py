"""Patient use cases: register, read, update (JSON merge patch) and deactivate.

Services take the unit of work and never commit. Concurrency is decided by the database: the
``(system, value)`` unique constraint for identifiers (``claim_identifiers``) and a conditional
``UPDATE … WHERE id = :id AND version = :v`` for every change (0 rows → 412).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, DuplicateIdentifier, NotFound, PreconditionFailed, ProbableDuplicate, ValidationFailed
from shared.events import catalog
from shared.events.outbox import emit
from shared.ids import uuid4
from shared.models import MRN_SYSTEM, Patient, PatientIdentifier
from shared.models.base import utcnow
from shared.models.patients import is_mrn_system
from shared.mrn import next_mrn
from shared.normalize import fold_key
from shared.schemas.patients import Patient as PatientResource
from shared.schemas.patients import PatientCreate, PatientState
from shared.services import provenance, versions
from shared.services.duplicate_flags import flag_duplicates, touches_matching_fields
from shared.services.duplicates import PatientLike, find_duplicates, lock_birth_date
from shared.services.merge_patch import apply_merge_patch, changed_members, validate_patched
from shared.services.name_index import index_names

WRITABLE = ("name", "birth_date", "sex", "identifiers", "phone", "email", "address", "preferred_language",
            "timezone", "communication", "status")
IdentKey = tuple[str, str]


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
            .values(id=uuid4(), patient_id=patient_id, system=system, value=value, type=id_type, created_at=now)
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


def _columns(data: PatientCreate) -> dict[str, Any]:
    """Patient columns from a validated body, with the folded names used by duplicates."""
    name = data.name
    return {
        "family": name.family,
        "given": list(name.given),
        "prefix": list(name.prefix),
        "suffix": list(name.suffix),
        "family_norm": fold_key(name.family),
        "first_given_norm": fold_key(name.given[0]) if name.given else "",
        "birth_date": data.birth_date,
        "sex": data.sex,
        "phone": data.phone,
        "email": str(data.email).lower() if data.email else None,
        "address": data.address.model_dump() if data.address else None,
        "preferred_language": data.preferred_language,
        "timezone": data.timezone,
        "comm_email": data.communication.email,
        "comm_sms": data.communication.sms,
    }


def register_patient(
    uow: UnitOfWork, principal: Principal, data: PatientCreate, *, origin: str = "api", reject_duplicates: bool = False
) -> Patient:
    """Insert a patient with a new MRN and its identifiers.

    With ``reject_duplicates`` a probable duplicate (``services.duplicates``) is a 409 listing the
    candidates. Identifiers are claimed first: an identifier owned by someone else is the more
    precise answer (409 naming that patient).
    """
    now = utcnow()
    patient = Patient(id=uuid4(), mrn=next_mrn(uow), status="active", **_columns(data), source=origin,
                      version=1, created_at=now, updated_at=now)
    uow.session.add(patient)
    uow.flush()
    claim_identifiers(
        uow,
        patient.id,
        [(MRN_SYSTEM, patient.mrn, "MR")] + [(i.system, i.value, i.type) for i in data.identifiers],
    )
    lock_birth_date(uow, data.birth_date)
    if reject_duplicates:
        candidates = find_duplicates(uow, PatientLike.of(patient))
        if candidates:
            raise ProbableDuplicate(
                "Probable duplicates exist; review them, or send ?allow_duplicate=true to register anyway",
                candidate_ids=[str(c.patient_id) for c in candidates],
                candidates=[{"patient_id": str(c.patient_id), "reason": c.reason} for c in candidates],
            )
    index_names(uow, patient.id, patient.family, patient.given)
    uow.session.refresh(patient, attribute_names=["identifiers"])
    versions.record(uow, principal, "patient", to_resource(patient), "create")
    audit.record(uow, principal, "patient.create", [patient.id])
    emit(uow, catalog.PATIENT_REGISTERED, patient.id,
         catalog.PatientRegistered(patient_id=patient.id, version=patient.version, origin=origin))  # type: ignore[arg-type]
    return patient


def load_patient(uow: UnitOfWork, patient_id: uuid.UUID, *, for_update: bool = False, fresh: bool = False) -> Patient:
    stmt = sa.select(Patient).where(Patient.id == patient_id).options(selectinload(Patient.identifiers))
    if for_update:
        stmt = stmt.with_for_update()
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    patient = uow.session.scalar(stmt)
    if patient is None:
        raise NotFound("No patient with this id")
    return patient


def get_patient(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID) -> Patient:
    patient = load_patient(uow, patient_id)
    audit.record(uow, principal, "patient.read", [patient.id])
    return patient


def _writable(patient: Patient, expected_version: int | None) -> int:
    """The version a change is conditional on; merged patients are read-only."""
    if patient.status == "merged":
        raise Conflict("This patient was merged into another; change the surviving patient",
                       merged_into=str(patient.merged_into))
    version = patient.version if expected_version is None else expected_version
    if patient.version != version:
        raise PreconditionFailed("The patient changed since you read it: GET it again and reapply your change")
    return version


def _conditional_update(uow: UnitOfWork, patient_id: uuid.UUID, version: int, values: dict[str, Any]) -> None:
    """``UPDATE … WHERE id = :id AND version = :v``: of two concurrent writers from the same
    version, the second finds 0 rows once the first commits."""
    updated = uow.session.execute(
        sa.update(Patient)
        .where(Patient.id == patient_id, Patient.version == version)
        .values(**values, version=version + 1, updated_at=utcnow())
        .returning(Patient.id)
        .execution_options(synchronize_session=False)
    ).first()
    if updated is None:
        raise PreconditionFailed("The patient changed since you read it: GET it again and reapply your change")


def _ident_map(items: list[dict[str, Any]]) -> dict[IdentKey, str | None]:
    return {(i["system"], i["value"]): i.get("type") for i in items}


def _sync_identifiers(uow: UnitOfWork, patient_id: uuid.UUID, old: dict[IdentKey, str | None],
                      new: dict[IdentKey, str | None]) -> None:
    removed = [k for k in old if k not in new]
    if removed:
        uow.session.execute(sa.delete(PatientIdentifier).where(
            PatientIdentifier.patient_id == patient_id,
            sa.tuple_(PatientIdentifier.system, PatientIdentifier.value).in_(removed)))
    for key in new.keys() & old.keys():
        if new[key] != old[key]:
            uow.session.execute(sa.update(PatientIdentifier).where(
                PatientIdentifier.patient_id == patient_id, PatientIdentifier.system == key[0],
                PatientIdentifier.value == key[1]).values(type=new[key]))
    claim_identifiers(uow, patient_id, [(s, v, t) for (s, v), t in new.items() if (s, v) not in old])


def _patched_state(patient: Patient, before: PatientResource, patch: dict[str, Any]) -> tuple[PatientState, dict[str, Any]]:
    """Apply the merge patch to the writable document and validate it; MRN identifiers are the
    server's: echoing them is fine, adding one (in the MRN's system in any letter case) is refused,
    leaving them out keeps them."""
    doc = before.model_dump(mode="json", include=set(WRITABLE))
    merged = apply_merge_patch(doc, patch)
    owned = {(i.system, i.value) for i in patient.identifiers if i.system == MRN_SYSTEM}
    errors, client = [], []
    for n, ident in enumerate(merged.get("identifiers") or []):
        if not isinstance(ident.get("system"), str) or not is_mrn_system(ident["system"]):
            client.append(ident)
        elif (MRN_SYSTEM, ident.get("value")) not in owned:
            errors.append({"in": "body", "field": f"identifiers.{n}", "message": "the MRN is assigned by the server",
                           "code": "read_only"})
    if errors:
        raise ValidationFailed(errors)
    merged["identifiers"] = client
    state = validate_patched(PatientState, merged)
    after = state.model_dump(mode="json")
    after["email"] = after["email"].lower() if after.get("email") else after.get("email")
    mrn = [i for i in doc["identifiers"] if i["system"] == MRN_SYSTEM]
    after["identifiers"] = mrn + after["identifiers"]
    return state, after


def _canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """Identifier order carries no meaning."""
    return {**doc, "identifiers": sorted((i["system"], i["value"], i.get("type") or "") for i in doc["identifiers"])}


def update_patient(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, patch: dict[str, Any],
    *, expected_version: int | None, origin: str = "api",
) -> Patient:
    """Apply a JSON merge patch (already checked against ``PatientPatch``) if the patient is still
    at ``expected_version`` (``None``: whatever version it is at now, for trusted feeds). A change
    of a field the duplicate rules read is kept and flags the probable duplicates it creates
    (``services.duplicate_flags``)."""
    patient = load_patient(uow, patient_id)
    version = _writable(patient, expected_version)
    before = to_resource(patient)
    state, after = _patched_state(patient, before, patch)
    doc = before.model_dump(mode="json", include=set(WRITABLE))
    changed = changed_members(_canonical(doc), _canonical(after))
    if not changed:
        audit.record(uow, principal, "patient.update", [patient_id], details={"changed": []})
        return patient
    _conditional_update(uow, patient_id, version, {**_columns(state), "status": state.status})
    if "identifiers" in changed:
        _sync_identifiers(uow, patient_id, _ident_map(doc["identifiers"]), _ident_map(after["identifiers"]))
    if "name" in changed:
        index_names(uow, patient_id, state.name.family, state.name.given)
    sources = provenance.record_api_edit(uow, patient_id, changed, principal.name, utcnow()) if origin != "lis" else None
    patient = load_patient(uow, patient_id, fresh=True)
    versions.record(uow, principal, "patient", to_resource(patient), "update", previous=before, field_sources=sources)
    audit.record(uow, principal, "patient.update", [patient_id], details={"changed": changed})
    event_type = catalog.LIS_PATIENT_UPDATED if origin == "lis" else catalog.PATIENT_UPDATED
    emit(uow, event_type, patient_id, catalog.PatientUpdated(patient_id=patient_id, version=patient.version, changed=changed))
    if before.status == "active" and patient.status == "inactive":
        emit(uow, catalog.PATIENT_DEACTIVATED, patient_id,
             catalog.PatientDeactivated(patient_id=patient_id, version=patient.version))
    if touches_matching_fields(changed):
        flag_duplicates(uow, principal, patient_id, origin=origin)
    return patient


def deactivate_patient(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, *, expected_version: int | None) -> Patient:
    """Mark the patient inactive (records are never deleted). Deactivating an inactive patient
    changes nothing."""
    patient = load_patient(uow, patient_id)
    version = _writable(patient, expected_version)
    if patient.status == "inactive":
        audit.record(uow, principal, "patient.deactivate", [patient_id], details={"changed": []})
        return patient
    before = to_resource(patient)
    _conditional_update(uow, patient_id, version, {"status": "inactive"})
    patient = load_patient(uow, patient_id, fresh=True)
    versions.record(uow, principal, "patient", to_resource(patient), "deactivate", previous=before)
    audit.record(uow, principal, "patient.deactivate", [patient_id], details={"changed": ["status"]})
    emit(uow, catalog.PATIENT_DEACTIVATED, patient_id,
         catalog.PatientDeactivated(patient_id=patient_id, version=patient.version))
    return patient
