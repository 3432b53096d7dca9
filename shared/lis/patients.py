"""Which patient a LIS message is about, and its demographics — under a row lock.

Identity is by identifier only (PID-3 repetitions): the patient holding any of the message's
identifiers, following ``merged_into`` to the survivor. Identifiers pointing at two different
patients cannot be resolved by a machine: the message is quarantined (``identifier_conflict``)
until an operator merges or corrects the records and replays it. No identifier match creates a
new patient (source ``lis``) — never a merge on demographics; a probable duplicate is only
flagged for review by the registry's duplicate finder.

Races are settled by constraints: two messages creating the same new patient both insert their
identifiers; the unique (system, value) index makes the second wait and then fail, which raises
`ConcurrentChange` so the whole delivery is retried and finds the first one's patient.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.db import UnitOfWork
from shared.errors import Conflict, DuplicateIdentifier
from shared.events import catalog
from shared.events.outbox import emit
from shared.hl7.model import Identifier
from shared.lis.errors import ConcurrentChange, Quarantine
from shared.lis.ordering import Stamp, merge_fields, stamp_time
from shared.lis.values import Warnings, clean, current_demographics, patient_columns
from shared.models import MRN_SYSTEM, LisPatientSync, Patient, PatientIdentifier
from shared.models.base import utcnow
from shared.mrn import next_mrn
from shared.services.duplicates import PatientLike, find_duplicates
from shared.services.merge import resolve_merged
from shared.services.name_index import index_names
from shared.services.patients import claim_identifiers

_MAX_MERGE_HOPS = 20  # as the registry's MAX_CHAIN


def identifier_keys(identifiers: tuple[Identifier, ...], warnings: Warnings) -> list[tuple[str, str, str | None]]:
    """(system, value, type) of the message's identifiers, de-duplicated, in message order."""
    keys: dict[tuple[str, str], str | None] = {}
    for ident in identifiers:
        value = (ident.value or "").replace("\x00", "").strip()
        system = (ident.system or "").replace("\x00", "").strip() or "LIS"
        if not value:
            continue
        if len(value) > 200 or len(system) > 200:
            raise Quarantine("invalid_field:PID-3")
        keys.setdefault((system, value), clean(ident.type, 64, warnings, "PID-3.5"))
    return [(system, value, id_type) for (system, value), id_type in keys.items()]


def survivor(uow: UnitOfWork, patient_id: uuid.UUID) -> uuid.UUID:
    try:
        return resolve_merged(uow, patient_id)
    except Conflict:
        raise Quarantine("merge_chain_too_long") from None


def find_patient(uow: UnitOfWork, keys: list[tuple[str, str, str | None]]) -> tuple[uuid.UUID | None, set[tuple[str, str]]]:
    """(the surviving patient holding any of `keys` or None, the keys already held by it)."""
    if not keys:
        return None, set()
    rows = uow.session.execute(
        sa.select(PatientIdentifier.system, PatientIdentifier.value, PatientIdentifier.patient_id, Patient.merged_into)
        .join(Patient, Patient.id == PatientIdentifier.patient_id)
        .where(sa.tuple_(PatientIdentifier.system, PatientIdentifier.value).in_([(s, v) for s, v, _ in keys]))
    ).all()
    survivors: dict[tuple[str, str], uuid.UUID] = {}
    for row in rows:
        owner = row.patient_id if row.merged_into is None else survivor(uow, row.merged_into)
        survivors[(row.system, row.value)] = owner
    distinct = set(survivors.values())
    if len(distinct) > 1:
        raise Quarantine("identifier_conflict")
    if not distinct:
        return None, set()
    return distinct.pop(), set(survivors)


def lock_patient(uow: UnitOfWork, patient_id: uuid.UUID) -> Any:
    """The patient row, locked FOR UPDATE; follows a merge that happened since it was found."""
    for _ in range(_MAX_MERGE_HOPS):
        row = uow.session.execute(sa.select(Patient.__table__).where(Patient.id == patient_id).with_for_update()).first()
        if row is None:
            raise ConcurrentChange("patient_vanished")
        if row.merged_into is None:
            return row
        patient_id = row.merged_into
    raise Quarantine("merge_chain_too_long")


def create_patient(uow: UnitOfWork, keys: list[tuple[str, str, str | None]], fields: dict[str, Any], stamp: Stamp,
                   control_id: str) -> uuid.UUID:
    """A new patient (source ``lis``) with the message's identifiers and usable demographics."""
    now = utcnow()
    patient_id = uuid.uuid4()
    mrn = next_mrn(uow)
    present = {k: v for k, v in fields.items() if v is not None}
    columns = {
        "family": "", "given": [], "prefix": [], "suffix": [], "family_norm": "", "first_given_norm": "",
        "birth_date": None, "sex": "unknown", "phone": None, "email": None, "address": None,
        **patient_columns(present),
    }
    uow.session.execute(
        sa.insert(Patient).values(
            id=patient_id, mrn=mrn, status="active", preferred_language="en", timezone="UTC",
            comm_email=False, comm_sms=False, source="lis", lis_applied_at=stamp_time(stamp),
            lis_applied_control_id=control_id[:64], version=1, created_at=now, updated_at=now, **columns,
        )
    )
    try:
        claim_identifiers(uow, patient_id, [(MRN_SYSTEM, mrn, "MR"), *keys])
    except DuplicateIdentifier:
        raise ConcurrentChange("identifier_claimed_concurrently") from None
    uow.session.execute(
        sa.insert(LisPatientSync).values(patient_id=patient_id, field_stamps={k: list(stamp) for k in present}, updated_at=now)
    )
    index_names(uow, patient_id, columns["family"], columns["given"])
    emit(uow, catalog.LIS_PATIENT_CREATED, patient_id,
         catalog.PatientRegistered(patient_id=patient_id, version=1, origin="lis"))
    return patient_id


def add_identifiers(uow: UnitOfWork, patient_id: uuid.UUID, keys: list[tuple[str, str, str | None]]) -> int:
    if not keys:
        return 0
    try:
        claim_identifiers(uow, patient_id, keys)
    except DuplicateIdentifier:
        raise ConcurrentChange("identifier_claimed_concurrently") from None
    return len(keys)


def update_demographics(uow: UnitOfWork, row: Any, fields: dict[str, Any], stamp: Stamp, control_id: str) -> list[str]:
    """Write the fields this message is the newest source of; returns the names that changed."""
    sync = uow.session.execute(
        sa.select(LisPatientSync.field_stamps).where(LisPatientSync.patient_id == row.id)
    ).scalar_one_or_none() or {}
    changes, new_stamps = merge_fields(current_demographics(row), sync, fields, stamp)
    now = utcnow()
    if new_stamps:
        upsert = pg_insert(LisPatientSync).values(patient_id=row.id, field_stamps=new_stamps, updated_at=now)
        uow.session.execute(upsert.on_conflict_do_update(
            index_elements=[LisPatientSync.patient_id],
            set_={"field_stamps": LisPatientSync.field_stamps.op("||")(upsert.excluded.field_stamps), "updated_at": now},
        ))
    newest = stamp_time(stamp)
    applied = {}
    if row.lis_applied_at is None or newest > row.lis_applied_at:
        applied = {"lis_applied_at": newest, "lis_applied_control_id": control_id[:64]}
    if not changes and not applied:
        return []
    values: dict[str, Any] = {**patient_columns(changes), **applied}
    if changes:
        values.update(version=Patient.version + 1, updated_at=now)
    version = uow.session.execute(
        sa.update(Patient).where(Patient.id == row.id).values(**values).returning(Patient.version)
    ).scalar_one()
    if "name" in changes:
        index_names(uow, row.id, changes["name"]["family"], changes["name"]["given"])
    if changes:
        emit(uow, catalog.LIS_PATIENT_UPDATED, row.id,
             catalog.PatientUpdated(patient_id=row.id, version=version, changed=sorted(changes)))
    return sorted(changes)


def flag_duplicates(uow: UnitOfWork, patient_id: uuid.UUID) -> int:
    """How many existing patients the new LIS patient probably duplicates.

    Nothing is merged: the registry lists them at ``GET /patients/{id}/duplicates`` for review,
    and the message carries a ``probable_duplicate`` warning.
    """
    row = uow.session.execute(
        sa.select(Patient.birth_date, Patient.family, Patient.given, Patient.phone, Patient.email).where(Patient.id == patient_id)
    ).one()
    probe = PatientLike(row.birth_date, row.family, tuple(row.given), row.phone, row.email, exclude_id=patient_id)
    return len(find_duplicates(uow, probe))
