"""Lab orders and results: read (the LIS feed writes them) and place (``requested``, with an
``order.requested`` event for the LIS side to act on); and the patient's observations that belong
to no order (ORU PATIENT_OBSERVATION).

An order shows its results grouped by OBX-4 sub-id (a culture's isolates, each with what was found
about it) and the child orders that report on each group (OBR-26/OBR-29: the isolate's
susceptibility panel), read with one extra query per page.

Orders placed here get a placer number from ``lab_order_placer_seq`` in the ``patient-mgt``
namespace (unique with ``uq_lab_orders_placer``): the LIS echoes it back in ORM/ORU messages.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, PreconditionFailed
from shared.events import catalog
from shared.events.outbox import emit
from shared.ids import uuid4
from shared.models import LabOrder, LabResult, Patient
from shared.placer import PLACER_NAMESPACE
from shared.models.base import utcnow
from shared.schemas.orders import Observation, Order, OrderChange, OrderCreate, OrderQuery
from shared.services import cursor
from shared.services.changed import record_change

CURSOR_KIND = "o"
OBSERVATION_CURSOR = "ob"


def _coding(system: str | None, code: str | None, display: str | None) -> dict[str, str | None]:
    return {"system": system, "code": code, "display": display}


def _result(r: LabResult) -> dict[str, object]:
    return {
        "id": r.id, "code": _coding(r.code_system, r.code, r.code_display), "value": r.value,
        "value_type": r.value_type, "units": r.units, "reference_range": r.reference_range,
        "abnormal_flags": list(r.abnormal_flags or []), "status": r.status, "observed_at": r.observed_at,
        "notes": list(r.notes or []), "sub_id": r.sub_id,
    }


def _sub_id_order(sub_id: str) -> tuple[tuple[int, int | str], ...]:
    """1 < 2 < 10 < 10.1 < A: numeric parts as numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in sub_id.split("."))


def _groups(order: LabOrder, children: dict[uuid.UUID, list[uuid.UUID]]) -> list[dict[str, object]]:
    groups: dict[str, dict[str, list[uuid.UUID]]] = {}
    for r in order.results:
        if r.sub_id:
            group = groups.setdefault(r.sub_id, {"result_ids": [], "child_order_ids": []})
            group["result_ids"].append(r.id)
            group["child_order_ids"] += children.get(r.id, [])
    return [{"sub_id": sub_id, **groups[sub_id]} for sub_id in sorted(groups, key=_sub_id_order)]


def to_order(order: LabOrder, children: dict[uuid.UUID, list[uuid.UUID]] | None = None) -> Order:
    """The API resource; `children` maps a result id to the child orders reporting on it (`child_orders`)."""
    parent = {"order_id": order.parent_order_id, "result_id": order.parent_result_id} if order.parent_order_id else None
    return Order.model_validate({
        "id": order.id, "patient_id": order.patient_id, "placer_number": order.placer_number,
        "placer_namespace": order.placer_namespace or None, "filler_number": order.filler_number,
        "filler_namespace": order.filler_namespace or None,
        "code": _coding(order.code_system, order.code, order.code_display),
        "status": order.status, "priority": order.priority, "notes": order.notes, "ordered_at": order.ordered_at,
        "sent_to_lis_at": order.sent_to_lis_at, "lis_accepted_at": order.lis_accepted_at,
        "results": [_result(r) for r in order.results], "result_groups": _groups(order, children or {}),
        "parent": parent, "version": order.version, "updated_at": order.updated_at,
    })


def child_orders(uow: UnitOfWork, orders: list[LabOrder]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """For the results of `orders`, the child orders whose parent result they are (one query)."""
    result_ids = [r.id for o in orders for r in o.results if r.sub_id]
    if not result_ids:
        return {}
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in uow.session.execute(
        sa.select(LabOrder.id, LabOrder.parent_result_id).where(LabOrder.parent_result_id.in_(result_ids))
        .order_by(LabOrder.created_at, LabOrder.id)
    ):
        found.setdefault(row.parent_result_id, []).append(row.id)
    return found


def to_observation(r: LabResult) -> Observation:
    return Observation.model_validate({**_result(r), "patient_id": r.patient_id, "version": r.version,
                                       "updated_at": r.updated_at})


def place_order(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, data: OrderCreate) -> LabOrder:
    # FOR KEY SHARE: a concurrent merge (FOR UPDATE) finishes first, and we then see it.
    patient = uow.session.scalar(
        sa.select(Patient).where(Patient.id == patient_id).with_for_update(key_share=True, read=True)
    )
    if patient is None:
        raise NotFound("No patient with this id")
    if patient.status != "active":
        raise Conflict(f"Orders are placed for active patients; this one is {patient.status}",
                       merged_into=str(patient.merged_into) if patient.merged_into else None)
    number = uow.session.execute(sa.text("SELECT nextval('lab_order_placer_seq')")).scalar_one()
    now = utcnow()
    order = LabOrder(
        id=uuid4(), patient_id=patient_id, placer_namespace=PLACER_NAMESPACE, placer_number=f"PM{number}",
        code_system=data.code.system, code=data.code.code, code_display=data.code.display, status="requested",
        priority=data.priority, notes=data.notes, ordered_at=now, source="api", version=1, created_at=now, updated_at=now,
    )
    uow.session.add(order)
    uow.flush()
    order = _load(uow, order.id)
    audit.record(uow, principal, "order.create", [patient_id], details={"order_id": str(order.id)})
    emit(uow, catalog.ORDER_REQUESTED, patient_id,
         catalog.OrderEvent(patient_id=patient_id, order_id=order.id, status="requested"))
    return order


def _lock_own_order(uow: UnitOfWork, order_id: uuid.UUID, expected_version: int) -> LabOrder:
    """An order placed through the API, locked, at the version the caller read."""
    order = uow.session.scalar(sa.select(LabOrder).where(LabOrder.id == order_id).with_for_update())
    if order is None:
        raise NotFound("No order with this id")
    if order.source != "api":
        raise Conflict("This order came from the LIS; it is changed or cancelled there")
    if order.version != expected_version:
        raise PreconditionFailed("The order changed since you read it: GET it again and reapply your change")
    return order


def _bump(uow: UnitOfWork, order: LabOrder, event_type: str, principal: Principal, action: str) -> LabOrder:
    record_change(uow, order, principal, action, event_type,
                  catalog.OrderEvent(patient_id=order.patient_id, order_id=order.id, status=order.status),
                  details={"order_id": str(order.id)})
    return _load(uow, order.id)


def change_order(uow: UnitOfWork, principal: Principal, order_id: uuid.UUID, data: OrderChange, *,
                 expected_version: int) -> LabOrder:
    """Change code, priority or notes while the lab has not accepted the order (no filler number, no ORC-1 OK yet)."""
    order = _lock_own_order(uow, order_id, expected_version)
    if order.status != "requested" or order.filler_number is not None or order.lis_accepted_at is not None:
        raise Conflict(f"The lab has accepted this order (status {order.status}); cancel it and place a new one")
    if "code" in data.model_fields_set and data.code is not None:
        order.code_system, order.code, order.code_display = data.code.system, data.code.code, data.code.display
    if "priority" in data.model_fields_set:
        order.priority = data.priority
    if "notes" in data.model_fields_set:
        order.notes = data.notes
    return _bump(uow, order, catalog.ORDER_CHANGED, principal, "order.update")


def cancel_order(uow: UnitOfWork, principal: Principal, order_id: uuid.UUID, *, expected_version: int) -> LabOrder:
    """Cancel an order that has no final result yet; the LIS hears of it through order.cancelled."""
    order = _lock_own_order(uow, order_id, expected_version)
    if order.status == "cancelled":
        raise Conflict("This order is already cancelled")
    if order.status in ("final", "corrected"):
        raise Conflict(f"This order has its results (status {order.status}); it cannot be cancelled")
    order.status = "cancelled"
    return _bump(uow, order, catalog.ORDER_CANCELLED, principal, "order.cancel")


def _load(uow: UnitOfWork, order_id: uuid.UUID) -> LabOrder:
    order = uow.session.scalar(
        sa.select(LabOrder).where(LabOrder.id == order_id).options(selectinload(LabOrder.results))
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound("No order with this id")
    return order


def get_order(uow: UnitOfWork, principal: Principal, order_id: uuid.UUID) -> LabOrder:
    order = _load(uow, order_id)
    audit.record(uow, principal, "order.read", [order.patient_id], details={"order_id": str(order_id)})
    return order


def list_orders(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, q: OrderQuery
) -> tuple[list[LabOrder], str | None]:
    """The patient's orders with their results, newest first (created_at, id descending)."""
    if uow.session.scalar(sa.select(Patient.id).where(Patient.id == patient_id)) is None:
        raise NotFound("No patient with this id")
    stmt = sa.select(LabOrder).where(LabOrder.patient_id == patient_id).options(selectinload(LabOrder.results))
    rows, next_cursor = cursor.newest_first_page(uow, stmt, LabOrder, LabOrder.created_at, CURSOR_KIND, q.cursor, q.limit)
    audit.record(uow, principal, "order.read", [patient_id], details={"returned": len(rows)})
    return rows, next_cursor


def list_observations(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, q: OrderQuery
) -> tuple[list[LabResult], str | None]:
    """The patient's observations that belong to no order, newest first (created_at, id descending)."""
    if uow.session.scalar(sa.select(Patient.id).where(Patient.id == patient_id)) is None:
        raise NotFound("No patient with this id")
    stmt = sa.select(LabResult).where(LabResult.patient_id == patient_id, LabResult.order_id.is_(None))
    rows, next_cursor = cursor.newest_first_page(uow, stmt, LabResult, LabResult.created_at, OBSERVATION_CURSOR,
                                                 q.cursor, q.limit)
    audit.record(uow, principal, "result.read", [patient_id], details={"returned": len(rows), "view": "observations"})
    return rows, next_cursor
