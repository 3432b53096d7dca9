"""The FHIR ServiceRequest and Observation searches: lab orders and results, of one patient or any.

Newest first by (created_at, id) with an id-only cursor unless ``_sort`` says otherwise; audited as
``order.read`` / ``result.read`` with the patients whose rows were returned. A search for a patient
that does not exist is an empty Bundle, as FHIR searches are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.fhir.lab import OBSERVATION_CATEGORY, REPORT_STATUS, RESULT_STATUS, V2_0074, to_observation
from shared.fhir.params import (
    DiagnosticReportSearchParams,
    ObservationSearchParams,
    SearchQuery,
    ServiceRequestSearchParams,
    bad_param,
)
from shared.fhir.search import Sort, all_of, count, date_condition, id_condition, page, sort_of, token
from shared.fhir.systems import ABSOLUTE_URI_SQL, LOCAL_CODE_SYSTEM, SYSTEM_NAME_SQL, code_systems_from_fhir
from shared.models import LabOrder, LabResult

ORDER_CURSOR = "fs"
REPORT_CURSOR = "fd"
OBSERVATION_STATUSES = ("registered", "preliminary", "final", "amended", "corrected", "cancelled",
                        "entered-in-error", "unknown")
REPORT_STATUSES = ("registered", "partial", "preliminary", "final", "corrected", "cancelled", "unknown")
RESULT_CURSOR = "fo"


def _patients(column: sa.ColumnElement[uuid.UUID], p: ObservationSearchParams | ServiceRequestSearchParams
              ) -> list[sa.ColumnElement[bool]]:
    return (all_of(p.patient, "patient", id_condition(column, "Patient", "patient"))
            + all_of(p.subject, "subject", id_condition(column, "Patient", "subject")))


def _common(model: type[LabOrder] | type[LabResult], kind: str, p: ObservationSearchParams | ServiceRequestSearchParams
            ) -> list[sa.ColumnElement[bool]]:
    return (_patients(model.patient_id, p)
            + all_of(p.id, "_id", id_condition(model.id, kind, "_id"))
            + all_of(p.last_updated, "_lastUpdated", date_condition(model.updated_at, "_lastUpdated")))


def _search(uow: UnitOfWork, principal: Principal, action: str, model: type[LabOrder] | type[LabResult],
            where: list[sa.ColumnElement[bool]], sort: Sort, kind: str, p: ObservationSearchParams | ServiceRequestSearchParams,
            used: list[str], options: tuple[Any, ...] = ()) -> tuple[list[Any], str | None, int | None]:
    stmt = sa.select(model).where(*where)
    rows, next_cursor = page(uow, stmt.options(*options), sort, kind, p.cursor, p.size())
    total = count(uow, stmt.with_only_columns(model.id)) if p.totals() else None
    audit.record(uow, principal, action, list(dict.fromkeys(r.patient_id for r in rows)),
                 details={"returned": len(rows), "params": used, "view": "fhir"})
    return rows, next_cursor, total


def _used(p: SearchQuery, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if getattr(p, n) is not None]


def search_service_requests(
    uow: UnitOfWork, principal: Principal, p: ServiceRequestSearchParams
) -> tuple[list[LabOrder], str | None, int | None]:
    """Lab orders, newest first unless ``_sort`` says otherwise."""
    sort = sort_of(p.sort, {"_lastUpdated": (LabOrder.updated_at, LabOrder.id),
                            "authored": (LabOrder.created_at, LabOrder.id)},
                   Sort(LabOrder.created_at, LabOrder.id, descending=True))
    return _search(uow, principal, "order.read", LabOrder, _common(LabOrder, "ServiceRequest", p), sort, ORDER_CURSOR, p,
                   _used(p, ("patient", "subject", "id", "last_updated")))


def _code(model: type[LabOrder] | type[LabResult]) -> Callable[[str], sa.ColumnElement[bool]]:
    """A token on the stored code: ``http://loinc.org`` also matches the HL7 name ``LN``."""
    def condition(value: str) -> sa.ColumnElement[bool]:
        t = token(value, "code")
        parts = []
        if t.code is not None:
            parts.append(model.code == t.code)
        if t.system in ("", LOCAL_CODE_SYSTEM):  # stored without a system (or with text in its slot)
            stored = sa.func.coalesce(model.code_system, "")
            parts.append(sa.not_(sa.or_(stored.op("~")(SYSTEM_NAME_SQL), stored.op("~")(ABSOLUTE_URI_SQL))))
        elif t.system is not None:
            parts.append(sa.func.upper(model.code_system).in_(code_systems_from_fhir(t.system)))
        return sa.and_(*parts)
    return condition


def _category(system: str, code: str) -> Callable[[str], sa.ColumnElement[bool]]:
    """Every row here has the one category ``system|code``: the search selects all or nothing."""
    def condition(value: str) -> sa.ColumnElement[bool]:
        t = token(value, "category")
        return sa.true() if t.code == code and t.system in (None, system) else sa.false()
    return condition


def _status(column: sa.ColumnElement[Any], mapping: dict[str, str], allowed: tuple[str, ...],
            *, upper: bool) -> Callable[[str], sa.ColumnElement[bool]]:
    """A FHIR status → the stored codes that map to it (``unknown``: every code the map lacks)."""
    stored = sa.func.upper(sa.func.trim(column)) if upper else column

    def condition(value: str) -> sa.ColumnElement[bool]:
        if value not in allowed:
            raise bad_param("status", f"use {', '.join(allowed)}")
        if value == "unknown":
            return sa.or_(column.is_(None), stored.not_in(list(mapping)))
        return stored.in_([k for k, v in mapping.items() if v == value])
    return condition


def observation_query(p: ObservationSearchParams) -> tuple[list[sa.ColumnElement[bool]], Sort]:
    """The WHERE and the order of an Observation search (the plan test EXPLAINs them)."""
    effective = sa.func.coalesce(LabResult.observed_at, LabResult.created_at)
    sort = sort_of(p.sort, {"_lastUpdated": (LabResult.updated_at, LabResult.id), "date": (effective, LabResult.id)},
                   Sort(LabResult.created_at, LabResult.id, descending=True))
    where = (_common(LabResult, "Observation", p) + all_of(p.code, "code", _code(LabResult), unescape=False)
             + all_of(p.date, "date", date_condition(LabResult.observed_at, "date"))
             + all_of(p.category, "category", _category(OBSERVATION_CATEGORY, "laboratory"), unescape=False)
             + all_of(p.status, "status", _status(LabResult.status, RESULT_STATUS, OBSERVATION_STATUSES, upper=True)))
    return where, sort


def search_observations(
    uow: UnitOfWork, principal: Principal, p: ObservationSearchParams
) -> tuple[list[LabResult], str | None, int | None]:
    """Lab results, newest stored first unless ``_sort`` says otherwise (``date``: the effective
    time, or when the result was stored where the LIS sent none)."""
    where, sort = observation_query(p)
    return _search(uow, principal, "result.read", LabResult, where, sort, RESULT_CURSOR, p,
                   _used(p, ("patient", "subject", "code", "date", "category", "status", "id", "last_updated")))


def search_diagnostic_reports(
    uow: UnitOfWork, principal: Principal, p: DiagnosticReportSearchParams
) -> tuple[list[LabOrder], str | None, int | None]:
    """Reports: the orders that have results, newest first (with their results loaded)."""
    effective = sa.select(sa.func.min(LabResult.observed_at)).where(LabResult.order_id == LabOrder.id).scalar_subquery()
    where = (_common(LabOrder, "DiagnosticReport", p)
             + [sa.exists().where(LabResult.order_id == LabOrder.id)]
             + all_of(p.code, "code", _code(LabOrder), unescape=False)
             + all_of(p.date, "date", date_condition(effective, "date"))
             + all_of(p.category, "category", _category(V2_0074, "LAB"), unescape=False)
             + all_of(p.status, "status", _status(LabOrder.status, REPORT_STATUS, REPORT_STATUSES, upper=False)))
    sort = sort_of(p.sort, {"_lastUpdated": (LabOrder.updated_at, LabOrder.id), "issued": (LabOrder.updated_at, LabOrder.id)},
                   Sort(LabOrder.created_at, LabOrder.id, descending=True))
    return _search(uow, principal, "order.read", LabOrder, where, sort, REPORT_CURSOR, p,
                   _used(p, ("patient", "subject", "code", "date", "category", "status", "id", "last_updated")),
                   options=(selectinload(LabOrder.results),))


def _read(uow: UnitOfWork, principal: Principal, model: type[LabOrder] | type[LabResult], row_id: uuid.UUID,
          kind: str, action: str) -> Any:
    row = uow.session.get(model, row_id)
    if row is None:
        raise NotFound(f"No {kind} with this id")
    audit.record(uow, principal, action, [row.patient_id], details={"view": "fhir"})
    return row


def read_order(uow: UnitOfWork, principal: Principal, order_id: uuid.UUID) -> LabOrder:
    return _read(uow, principal, LabOrder, order_id, "ServiceRequest", "order.read")  # type: ignore[no-any-return]


def read_result(uow: UnitOfWork, principal: Principal, result_id: uuid.UUID) -> LabResult:
    return _read(uow, principal, LabResult, result_id, "Observation", "result.read")  # type: ignore[no-any-return]


def read_report(uow: UnitOfWork, principal: Principal, order_id: uuid.UUID) -> LabOrder:
    """An order's report: 404 while the order has no result (nothing is reported yet)."""
    order = uow.session.get(LabOrder, order_id)
    if order is None or not order.results:
        raise NotFound("No DiagnosticReport with this id")
    audit.record(uow, principal, "order.read", [order.patient_id], details={"view": "fhir"})
    return order


def members(uow: UnitOfWork, results: list[LabResult]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """For each of ``results``, the results of the child orders reporting on it (a culture isolate's
    susceptibilities: ``Observation.hasMember``), in the order they were stored. One query, through
    ``ix_lab_orders_parent_result_id``."""
    ids = [r.id for r in results]
    if not ids:
        return {}
    rows = uow.session.execute(
        sa.select(LabOrder.parent_result_id, LabResult.id).join(LabResult, LabResult.order_id == LabOrder.id)
        .where(LabOrder.parent_result_id.in_(ids))
        .order_by(LabOrder.created_at, LabOrder.id, LabResult.created_at, LabResult.result_key)
    ).all()
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for parent, member in rows:
        found.setdefault(parent, []).append(member)
    return found


def observations(uow: UnitOfWork, results: list[LabResult]) -> list[dict[str, Any]]:
    """``results`` as FHIR Observations, each with its ``hasMember`` (one query for them all)."""
    found = members(uow, results)
    return [to_observation(r, found.get(r.id, ())) for r in results]
