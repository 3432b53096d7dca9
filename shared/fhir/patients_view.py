"""The FHIR Patient use cases, over the registry's services: read, search, history, create.

Search reuses the registry's index-backed conditions (``services.search.build_search``) and adds
the two FHIR filters it does not have (gender, birthdate ranges) to the same statement; paging is
the registry's keyset order (family_norm, id). Every read is audited as the registry audits it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork, unit_of_work
from shared.errors import BadRequest, DuplicateIdentifier, ValidationFailed
from shared.fhir.params import PageQuery, PatientSearchParams, bad_param, birthdate_bounds, token
from shared.fhir.systems import identifier_system_from_fhir
from shared.models import Patient, PatientIdentifier, ResourceVersion
from shared.schemas.patients import Patient as PatientResource
from shared.schemas.patients import PatientCreate
from shared.schemas.search import PatientSearchQuery
from shared.schemas.versions import VersionQuery
from shared.services import cursor, versions
from shared.services import patients as registry
from shared.services.search import build_search

CURSOR_KIND = "fp"
_REGISTRY_NAMES = {"limit": "_count", "cursor": "_cursor"}


def read_patient(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID) -> PatientResource:
    return registry.to_resource(registry.get_patient(uow, principal, patient_id))


# --- search -------------------------------------------------------------------------------------

def _registry_query(p: PatientSearchParams) -> PatientSearchQuery:
    identifier = None
    if p.identifier is not None:
        system, value = token(p.identifier, "identifier")
        identifier = f"{identifier_system_from_fhir(system)}|{value}" if system else value
    try:
        return PatientSearchQuery.model_validate(
            {"name": p.name, "family": p.family, "given": p.given, "identifier": identifier, "limit": p.page_size()})
    except ValidationError as exc:
        errors = [{"in": "query", "field": _REGISTRY_NAMES.get(str(e["loc"][0]), str(e["loc"][0])), "message": e["msg"],
                   "code": e["type"]} for e in exc.errors(include_url=False, include_input=False, include_context=False)]
        raise BadRequest("Search parameters are not valid", errors=errors) from None


def _fhir_conditions(p: PatientSearchParams) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if p.gender is not None:
        conditions.append(Patient.sex == p.gender)
    if p.birthdate:
        low, high = birthdate_bounds(p.birthdate)  # type: ignore[arg-type]
        if low is not None:
            conditions.append(Patient.birth_date >= low)
        if high is not None:
            conditions.append(Patient.birth_date < high)
    return conditions


def _after(uow: UnitOfWork, token_: str) -> tuple[str, uuid.UUID]:
    try:
        last_id = cursor.decode_id(CURSOR_KIND, token_)
    except ValidationFailed:
        raise bad_param("_cursor", "is not a cursor this search issued") from None
    family_norm = uow.session.scalar(sa.select(Patient.family_norm).where(Patient.id == last_id))
    if family_norm is None:
        raise bad_param("_cursor", "is not a cursor this search issued")
    return family_norm, last_id


def search_patients(
    uow: UnitOfWork, principal: Principal, p: PatientSearchParams
) -> tuple[list[PatientResource], str | None, int]:
    """One page, the cursor of the next one, and the number of matches."""
    q = _registry_query(p)
    extra = _fhir_conditions(p)
    after = _after(uow, p.cursor) if p.cursor else None
    stmt = build_search(q, after).where(*extra).options(selectinload(Patient.identifiers))
    rows = list(uow.session.scalars(stmt))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    matches = build_search(q).where(*extra).with_only_columns(Patient.id).order_by(None).limit(None).subquery()
    total = uow.session.scalar(sa.select(sa.func.count()).select_from(matches)) or 0
    used = sorted(k for k in ("name", "family", "given", "birthdate", "gender", "identifier") if getattr(p, k) is not None)
    audit.record(uow, principal, "patient.search", [r.id for r in rows],
                 details={"params": used, "returned": len(rows), "view": "fhir"})
    next_cursor = cursor.encode(CURSOR_KIND, rows[-1].id) if more else None
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
