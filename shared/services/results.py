"""A patient's lab results across orders (newest observation first) and one analyte's trend (oldest first).

Both read ``lab_results`` by ``patient_id`` alone, never through ``lab_orders``: a result the LIS sent
without an order belongs to the patient just the same. Pages follow the observation time (OBX-14),
falling back to when the result was stored when the LIS gave none (``OBSERVED``), with the id as a
tie-break; ``ix_lab_results_patient_observed`` and ``ix_lab_results_patient_code_observed`` serve them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.critical.rules import numeric_value
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.lis.ordering import as_stamp, stamp_time
from shared.models import LabResult, Patient
from shared.schemas.results import ResultItem, ResultQuery, ResultVersion, Trend, TrendPoint, TrendQuery
from shared.services import cursor

RESULTS_CURSOR = "r"
TREND_CURSOR = "t"
OBSERVED = sa.func.coalesce(LabResult.observed_at, LabResult.created_at)


def _require_patient(uow: UnitOfWork, patient_id: uuid.UUID) -> None:
    if uow.session.scalar(sa.select(Patient.id).where(Patient.id == patient_id)) is None:
        raise NotFound("No patient with this id")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _in_range(stmt: sa.Select[Any], q: ResultQuery | TrendQuery) -> sa.Select[Any]:
    if q.from_ is not None:
        stmt = stmt.where(OBSERVED >= _day_start(q.from_))
    if q.to is not None:
        stmt = stmt.where(OBSERVED < _day_start(q.to + timedelta(days=1)))
    return stmt


def _coding(r: LabResult) -> dict[str, str | None]:
    return {"system": r.code_system, "code": r.code, "display": r.code_display}


def to_item(r: LabResult) -> ResultItem:
    return ResultItem.model_validate({
        "id": r.id, "order_id": r.order_id, "code": _coding(r), "value": r.value, "value_type": r.value_type,
        "units": r.units, "reference_range": r.reference_range, "abnormal_flags": list(r.abnormal_flags or []),
        "status": r.status, "observed_at": r.observed_at, "notes": list(r.notes or []),
        "versions": 1 + len(r.previous_versions or []), "updated_at": r.updated_at,
    })


def list_results(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, q: ResultQuery) -> tuple[list[ResultItem], str | None]:
    _require_patient(uow, patient_id)
    stmt = _in_range(sa.select(LabResult).where(LabResult.patient_id == patient_id), q)
    if q.code is not None:
        stmt = stmt.where(LabResult.code == q.code)
    if q.system is not None:
        stmt = stmt.where(LabResult.code_system == q.system)
    if q.status is not None:
        stmt = stmt.where(LabResult.status.in_(q.status))
    rows, next_cursor = cursor.newest_first_page(uow, stmt, LabResult, OBSERVED, RESULTS_CURSOR, q.cursor, q.limit)
    audit.record(uow, principal, "result.read", [patient_id], details={"returned": len(rows)})
    return [to_item(r) for r in rows], next_cursor


def _version(v: dict[str, Any]) -> ResultVersion:
    stamp = as_stamp(v.get("stamp"))
    return ResultVersion.model_validate({
        "value": v.get("value"), "units": v.get("units"), "reference_range": v.get("reference_range"),
        "abnormal_flags": list(v.get("abnormal_flags") or []), "status": v.get("status"),
        "observed_at": v.get("observed_at"), "reported_at": stamp_time(stamp) if stamp and stamp[0] else None,
    })


def _point(r: LabResult) -> TrendPoint:
    return TrendPoint.model_validate({
        "result_id": r.id, "order_id": r.order_id, "observed_at": r.observed_at, "value": r.value,
        "numeric_value": numeric_value(r.value_type, r.value), "units": r.units, "reference_range": r.reference_range,
        "abnormal_flags": list(r.abnormal_flags or []), "status": r.status,
        "previous_versions": [_version(v) for v in r.previous_versions or []],
    })


def trend(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, code: str, q: TrendQuery) -> Trend:
    """The values of one analyte in observation-time order, each with its earlier versions."""
    _require_patient(uow, patient_id)
    stmt = _in_range(sa.select(LabResult).where(LabResult.patient_id == patient_id, LabResult.code == code), q)
    if q.system is not None:
        stmt = stmt.where(LabResult.code_system == q.system)
    rows, next_cursor = cursor.keyset_page(uow, stmt, LabResult, OBSERVED, TREND_CURSOR, q.cursor, q.limit,
                                           newest_first=False)
    audit.record(uow, principal, "result.read", [patient_id],
                 details={"view": "trend", "code": code[:100], "returned": len(rows)})
    named = rows[-1] if rows else None
    coding = _coding(named) if named else {"system": q.system, "code": code, "display": None}
    return Trend.model_validate({"patient_id": patient_id, "code": coding, "points": [_point(r) for r in rows],
                                 "next_cursor": next_cursor})
