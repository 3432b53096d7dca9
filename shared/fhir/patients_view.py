"""The FHIR Patient use cases, over the registry's services: read, search, history, create.

Search reuses the registry's index-backed conditions (``services.search.build_search``) and adds
the two FHIR filters it does not have (gender, birthdate ranges) to the same statement; paging is
the registry's keyset order (family_norm, id). Every read is audited as the registry audits it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork, unit_of_work
from shared.errors import DuplicateIdentifier, NotFound, ValidationFailed
from shared.fhir.params import PageQuery, PatientSearchParams, bad_param
from shared.fhir.search import (
    Sort,
    all_of,
    birthdate_condition,
    count,
    date_condition,
    id_condition,
    page,
    sort_of,
    token,
)
from shared.fhir.systems import identifier_system_from_fhir
from shared.models import MRN_SYSTEM, Patient, PatientIdentifier, ResourceVersion
from shared.models.patients import is_mrn_system
from shared.schemas.patients import Patient as PatientResource
from shared.schemas.patients import PatientCreate
from shared.schemas.versions import VersionQuery
from shared.normalize import tokens
from shared.services import versions
from shared.services import patients as registry
# The registry's index-backed conditions (left private there so issue 15's rewrite of that module
# stays its own; a rename there shows up here as an import error, not a silent change).
from shared.services.search import _has_identifier as has_identifier
from shared.services.search import _has_word as has_word

CURSOR_KIND = "fp"


def read_patient(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID) -> PatientResource:
    return registry.to_resource(registry.get_patient(uow, principal, patient_id))


# --- search -------------------------------------------------------------------------------------

GENDERS = ("male", "female", "other", "unknown")


def _name_condition(kind: str | None) -> Callable[[str], sa.ColumnElement[bool]]:
    def condition(value: str) -> sa.ColumnElement[bool]:
        words = list(dict.fromkeys(tokens(value)))
        if not words:
            raise bad_param(kind or "name", "give at least one letter or digit")
        return sa.and_(*(has_word(w, kind) for w in words))
    return condition


def _gender(value: str) -> sa.ColumnElement[bool]:
    if value not in GENDERS:
        raise bad_param("gender", f"use {', '.join(GENDERS)}")
    return Patient.sex == value


def _identifier(value: str) -> sa.ColumnElement[bool]:
    t = token(value, "identifier")
    if t.system == "":
        return sa.false()  # every identifier here has a system
    system = identifier_system_from_fhir(t.system) if t.system is not None else None
    if system is not None and is_mrn_system(system):
        system = MRN_SYSTEM  # the MRN's system in any letter case (docs/fhir.md)
    if t.code is None:
        return Patient.id.in_(sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.system == system))
    return has_identifier(system, t.code)


def _conditions(p: PatientSearchParams) -> tuple[list[sa.ColumnElement[bool]], bool]:
    """The WHERE of a search, and whether it has a name word (which changes the cheap order)."""
    where: list[sa.ColumnElement[bool]] = [Patient.status.in_(("active", "inactive"))]
    for raw, field, kind in ((p.name, "name", None), (p.family, "family", "family"), (p.given, "given", "given")):
        where += all_of(raw, field, _name_condition(kind))
    where += all_of(p.birthdate, "birthdate", birthdate_condition(Patient.birth_date))
    where += all_of(p.gender, "gender", _gender)
    where += all_of(p.identifier, "identifier", _identifier, unescape=False)
    where += all_of(p.id, "_id", id_condition(Patient.id, "Patient", "_id"))
    where += all_of(p.last_updated, "_lastUpdated", date_condition(Patient.updated_at, "_lastUpdated"))
    return where, any(v is not None for v in (p.name, p.family, p.given))


def search_patients(
    uow: UnitOfWork, principal: Principal, p: PatientSearchParams
) -> tuple[list[PatientResource], str | None, int | None]:
    """One page, the cursor of the next one, and the number of matches (None with ``_total=none``).
    Default order: the registry's (family_norm, id); with a name word the order is on an expression
    the index cannot give, so the planner starts from the name tokens (see services.search)."""
    where, has_name = _conditions(p)
    family = Patient.family_norm.concat("") if has_name else Patient.family_norm
    sort = sort_of(p.sort, {"_lastUpdated": (Patient.updated_at, Patient.id), "family": (family, Patient.id)},
                   Sort(family, Patient.id, descending=False))
    stmt = sa.select(Patient).where(*where)
    rows, next_cursor = page(uow, stmt.options(selectinload(Patient.identifiers)), sort, CURSOR_KIND, p.cursor, p.size())
    total = count(uow, stmt.with_only_columns(Patient.id)) if p.totals() else None
    used = sorted(k for k in ("name", "family", "given", "birthdate", "gender", "identifier", "id", "last_updated")
                  if getattr(p, k) is not None)
    audit.record(uow, principal, "patient.search", [r.id for r in rows],
                 details={"params": used, "returned": len(rows), "view": "fhir"})
    return [registry.to_resource(r) for r in rows], next_cursor, total


# --- history ------------------------------------------------------------------------------------

def patient_history(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, p: PageQuery
) -> tuple[list[tuple[PatientResource, datetime]], str | None, int]:
    """The patient's versions, newest first (the registry's ``resource_versions``)."""
    registry.load_patient(uow, patient_id)
    try:
        items, next_cursor = versions.list_versions(
            uow, principal, patient_id, VersionQuery(resource_type="patient", limit=p.page_size(), cursor=p.cursor))
    except ValidationFailed:
        raise bad_param("_cursor", "is not a cursor this history issued") from None
    total = uow.session.scalar(sa.select(sa.func.count()).select_from(ResourceVersion).where(
        ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == patient_id)) or 0
    return [(PatientResource.model_validate(i.snapshot), i.changed_at) for i in items], next_cursor, total


def patient_version(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, version: int) -> PatientResource:
    """One version of a patient (vread). The current version is the record itself when no snapshot
    holds it (a patient written before versioning)."""
    current = registry.load_patient(uow, patient_id)
    snapshot = uow.session.scalar(sa.select(ResourceVersion.snapshot).where(
        ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == patient_id,
        ResourceVersion.version == version))
    if snapshot is not None:
        resource = PatientResource.model_validate(snapshot)
    elif version == current.version:
        resource = registry.to_resource(current)
    else:
        raise NotFound("No such version of this Patient")
    audit.record(uow, principal, "patient.versions.read", [patient_id], details={"version": version, "view": "fhir"})
    return resource


# --- create -------------------------------------------------------------------------------------

def _owner(uow: UnitOfWork, system: str, value: str) -> uuid.UUID | None:
    return uow.session.scalar(sa.select(PatientIdentifier.patient_id).where(
        PatientIdentifier.system == system, PatientIdentifier.value == value))


def create_patient(
    principal: Principal, data: PatientCreate, condition: tuple[str, str] | None, *, allow_duplicate: bool = False
) -> tuple[PatientResource, bool]:
    """Register ``data`` → (resource, created). With ``condition`` (an identifier of ``data``), the
    patient holding that identifier is returned instead when there is one.

    Concurrent conditional creates are decided by the unique (system, value) constraint, not by
    the look-up: the loser's ``INSERT … ON CONFLICT DO NOTHING`` waits for the winner's commit,
    its transaction is rolled back (no patient, no event), and it answers with the winner's patient.
    """
    reject = not allow_duplicate
    if condition is None:
        with unit_of_work() as uow:
            return registry.to_resource(registry.register_patient(uow, principal, data, reject_duplicates=reject)), True
    system, value = condition
    try:
        with unit_of_work() as uow:
            existing = _owner(uow, system, value)
            if existing is not None:
                return read_patient(uow, principal, existing), False
            return registry.to_resource(registry.register_patient(uow, principal, data, reject_duplicates=reject)), True
    except DuplicateIdentifier:
        with unit_of_work() as uow:
            existing = _owner(uow, system, value)
            if existing is None:
                raise  # another identifier of the body belongs to someone else: the 409 stands
            return read_patient(uow, principal, existing), False
