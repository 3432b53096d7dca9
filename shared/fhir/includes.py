"""``_include``, ``_revinclude``, ``_elements`` and the lenient-handling note of a searchset.

Included resources are audited as the reads they are (``patient.read``, ``order.read``,
``result.read``) in the search's transaction. A ``_revinclude`` adds at most ``MAX_REVINCLUDED``
resources (newest first); the Bundle says so in an OperationOutcome entry when it stopped there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.fhir import lab_view
from shared.fhir.lab import to_service_request
from shared.fhir.params import SearchQuery, bad_param
from shared.fhir.patient import to_fhir_patient
from shared.fhir.search import and_or
from shared.models import LabOrder, LabResult, Patient
from shared.services import patients as registry

MAX_REVINCLUDED = 1000
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}
_ELEMENT = re.compile(r"^[a-z][A-Za-z0-9]{0,63}$")

# What each type's _include may name (the CapabilityStatement's searchInclude).
INCLUDES: dict[str, tuple[str, ...]] = {
    "Patient": (),
    "ServiceRequest": ("ServiceRequest:patient", "ServiceRequest:subject"),
    "Observation": ("Observation:patient", "Observation:subject", "Observation:based-on"),
    "DiagnosticReport": ("DiagnosticReport:patient", "DiagnosticReport:subject", "DiagnosticReport:result",
                         "DiagnosticReport:based-on"),
}
REVINCLUDES: dict[str, tuple[str, ...]] = {"Patient": ("Observation:patient", "Observation:subject")}


def _names(raw: Any, field: str, allowed: tuple[str, ...]) -> list[str]:
    names = [n for group in and_or(raw, field) for n in group]
    for name in names:
        if name not in allowed:
            raise bad_param(field, f"use {', '.join(allowed)}" if allowed else "is not supported for this type")
    return list(dict.fromkeys(names))


def _patients(uow: UnitOfWork, principal: Principal, ids: Iterable[uuid.UUID]) -> list[dict[str, Any]]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    rows = uow.session.scalars(sa.select(Patient).where(Patient.id.in_(wanted)).options(selectinload(Patient.identifiers)))
    out = [to_fhir_patient(registry.to_resource(r)) for r in rows]
    audit.record(uow, principal, "patient.read", [uuid.UUID(r["id"]) for r in out], details={"view": "fhir", "include": True})
    return out


def _orders(uow: UnitOfWork, principal: Principal, ids: Iterable[uuid.UUID]) -> list[dict[str, Any]]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    rows = list(uow.session.scalars(sa.select(LabOrder).where(LabOrder.id.in_(wanted))))
    audit.record(uow, principal, "order.read", list(dict.fromkeys(r.patient_id for r in rows)),
                 details={"view": "fhir", "include": True})
    return [to_service_request(r) for r in rows]


def _results(uow: UnitOfWork, principal: Principal, rows: list[LabResult]) -> list[dict[str, Any]]:
    if rows:
        audit.record(uow, principal, "result.read", list(dict.fromkeys(r.patient_id for r in rows)),
                     details={"view": "fhir", "include": True})
    return lab_view.observations(uow, rows)


def included(uow: UnitOfWork, principal: Principal, kind: str, rows: list[Any], p: SearchQuery,
             revinclude: Any = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The resources ``_include``/``_revinclude`` add for the page ``rows``, and notes for the Bundle."""
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in _names(p.include, "_include", INCLUDES[kind]):
        target = name.split(":", 1)[1]
        if target in ("patient", "subject"):
            out += _patients(uow, principal, (r.patient_id if kind != "Patient" else r.id for r in rows))
        elif target == "based-on":
            out += _orders(uow, principal, (r.order_id if kind == "Observation" else r.id for r in rows
                                            if (r.order_id if kind == "Observation" else r.id) is not None))
        elif target == "result":
            out += _results(uow, principal, [res for r in rows for res in r.results])
    for _name in _names(revinclude, "_revinclude", REVINCLUDES.get(kind, ())):
        ids = [r.id for r in rows]
        found = list(uow.session.scalars(sa.select(LabResult).where(LabResult.patient_id.in_(ids))
                                         .order_by(LabResult.created_at.desc(), LabResult.id.desc())
                                         .limit(MAX_REVINCLUDED + 1))) if ids else []
        if len(found) > MAX_REVINCLUDED:
            notes.append(f"_revinclude stopped at {MAX_REVINCLUDED} Observations (newest first); "
                         "search Observation?patient= for the rest")
        out += _results(uow, principal, found[:MAX_REVINCLUDED])
    return out, notes


def elements(p: SearchQuery) -> list[str]:
    names = [n for group in and_or(p.elements, "_elements") for n in group]
    for name in names:
        if not _ELEMENT.match(name):
            raise bad_param("_elements", "name top-level elements (status, code, subject…)")
    return names


def subset(resource: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Only ``names`` (and resourceType, id, meta), tagged SUBSETTED as FHIR requires."""
    if not names:
        return resource
    kept = {k: v for k, v in resource.items() if k in names or k in ("resourceType", "id", "meta")}
    meta = dict(kept.get("meta", {}))
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept
