"""The FHIR ServiceRequest and Observation searches: a patient's lab orders and results.

Orders come from the registry's ``services.orders.list_orders`` (its page order, newest first, and
its audit row). Results are queried here — the registry has no result search — newest first by
(created_at, id) with an id-only cursor, and audited as ``result.read``. A search for a patient
that does not exist is an empty Bundle, as FHIR searches are.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import ValidationFailed
from shared.fhir.params import ObservationSearchParams, ServiceRequestSearchParams, bad_param, split_escaped, token
from shared.fhir.systems import code_systems_from_fhir
from shared.models import LabOrder, LabResult, Patient
from shared.schemas.orders import OrderQuery
from shared.services import cursor
from shared.services import orders as registry_orders

CURSOR_KIND = "fo"
MAX_CODES = 20


def _exists(uow: UnitOfWork, patient_id: uuid.UUID) -> bool:
    return uow.session.scalar(sa.select(Patient.id).where(Patient.id == patient_id)) is not None


def search_service_requests(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, p: ServiceRequestSearchParams
) -> tuple[list[LabOrder], str | None, int]:
    if not _exists(uow, patient_id):
        audit.record(uow, principal, "order.read", [], details={"returned": 0, "view": "fhir"})
        return [], None, 0
    try:
        rows, next_cursor = registry_orders.list_orders(
            uow, principal, patient_id, OrderQuery(limit=p.page_size(), cursor=p.cursor))
    except ValidationFailed:
        raise bad_param("_cursor", "is not a cursor this search issued") from None
    total = uow.session.scalar(sa.select(sa.func.count()).select_from(LabOrder).where(LabOrder.patient_id == patient_id))
    return rows, next_cursor, total or 0


def _code_condition(param: str) -> sa.ColumnElement[bool]:
    """FHIR token list: ``system|code`` or ``code``, comma-separated for any of them."""
    values = split_escaped(param, ",", unescape=False)
    if len(values) > MAX_CODES:
        raise bad_param("code", f"give at most {MAX_CODES} codes")
    options = []
    for raw in values:
        system, code = token(raw, "code")
        if system is None:
            options.append(LabResult.code == code)
        else:
            options.append(sa.and_(LabResult.code == code,
                                   sa.func.upper(LabResult.code_system).in_(code_systems_from_fhir(system))))
    return sa.or_(*options)


def search_observations(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, p: ObservationSearchParams
) -> tuple[list[LabResult], str | None, int]:
    where = [LabResult.patient_id == patient_id]
    if p.code is not None:
        where.append(_code_condition(p.code))
    if not _exists(uow, patient_id):
        audit.record(uow, principal, "result.read", [], details={"returned": 0, "view": "fhir"})
        return [], None, 0
    stmt = sa.select(LabResult).where(*where)
    if p.cursor:
        try:
            last_id = cursor.decode_id(CURSOR_KIND, p.cursor)
        except ValidationFailed:
            raise bad_param("_cursor", "is not a cursor this search issued") from None
        last_at = uow.session.scalar(sa.select(LabResult.created_at).where(LabResult.id == last_id))
        if last_at is None:
            raise bad_param("_cursor", "is not a cursor this search issued")
        stmt = stmt.where(sa.tuple_(LabResult.created_at, LabResult.id) < sa.tuple_(sa.literal(last_at), sa.literal(last_id)))
    size = p.page_size()
    rows = list(uow.session.scalars(stmt.order_by(LabResult.created_at.desc(), LabResult.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    total = uow.session.scalar(sa.select(sa.func.count()).select_from(LabResult).where(*where)) or 0
    audit.record(uow, principal, "result.read", [patient_id],
                 details={"returned": len(rows), "params": ["code"] if p.code else [], "view": "fhir"})
    return rows, cursor.encode(CURSOR_KIND, rows[-1].id) if more else None, total
