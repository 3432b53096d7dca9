"""One patient group of an order or result message (ORM, OML, ORU, OUL): the patient, its orders
with their results, ORU's patient-level observations, and the links of child orders to their parent.

* The patient is the group's PID patient (found or created by the caller's `resolve`); ORM/OML/OUL
  without a PID use the patient of the order they name (none known → ``missing_segment:PID``, two
  different → ``order_patient_mismatch``).
* Orders are written in a stable order (by key) so two messages touching the same orders cannot
  deadlock; each order's results are written under its row lock.
* Patient-level observations (ORU v2.7+ PATIENT_OBSERVATION) are results without an order, keyed
  within the patient; they announce no ``result.available`` (that event names an order).
* A child order (OBR-29 parent numbers, OBR-26 parent result — e.g. the susceptibility panel of
  one isolate) is linked to its parent order and to the parent's result with that code and OBX-4
  sub-id, once every order of the group is written. A parent not known yet leaves the child
  unlinked, with the warning ``parent_unknown:OBR-29``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.db.driver_uow import DriverUnitOfWork, NeedsOrm
from shared.events import catalog
from shared.hl7.model import OrderData, ParentLink, PatientGroup
from shared.lis import orders as lis_orders
from shared.lis import patients as lis_patients
from shared.lis.errors import Quarantine
from shared.lis.outcome import Applied, MessageContext
from shared.lis.pending import Pending
from shared.lis.results import observation_keys, record_results
from shared.lis.values import Warnings

if TYPE_CHECKING:
    from shared.db import UnitOfWork


def apply_orders(uow: UnitOfWork, ctx: MessageContext, group: PatientGroup, warnings: Warnings, *, results: bool,
                 resolve: Callable[[], Applied], first_position: int = 0) -> Applied:
    keys = [lis_orders.order_keys(order, ctx, first_position + index) for index, order in enumerate(group.orders)]
    if group.patient is not None:
        outcome = resolve()
    else:
        # OML/OUL may leave out the PID: the patient is the one of an order we already know.
        found = {p for p in (lis_orders.find_order_patient(uow, k) for k in keys) if p is not None}
        if len(found) != 1:
            raise Quarantine("missing_segment:PID" if not found else "order_patient_mismatch")
        row = lis_patients.lock_patient(uow, found.pop())
        outcome = Applied(status="processed", patient_id=row.id, patient="unchanged")
    patient_id = outcome.patient_id
    assert patient_id is not None
    if not group.orders:
        raise Quarantine("missing_segment:ORC" if not results else "missing_segment:OBR")
    written: dict[int, uuid.UUID] = {}
    # Lock orders in a stable order (by key) so two messages touching the same orders cannot deadlock.
    for n, index in enumerate(sorted(range(len(keys)), key=lambda i: keys[i].sort_key)):
        order, key = group.orders[index], keys[index]
        if n and ctx.pending is not None:
            ctx.pending.flush(uow)  # an earlier order of this message may be the one these keys name
        prefetched = ctx.found_order[1] if n == 0 and ctx.found_order and ctx.found_order[0] == key else None
        done = lis_orders.apply_order(uow, patient_id, order, key, ctx.stamp, warnings, pending=ctx.pending,
                                      prefetched=prefetched)
        written[index] = done.order_id
        outcome.orders_created += done.created
        outcome.orders_updated += bool(done.changed)
        outcome.orders_accepted += done.accepted
        if order.results:
            recorded = record_results(uow, patient_id, done.order_id, order.results, ctx.stamp, ctx.message_id,
                                      warnings, new_order=done.created, pending=ctx.pending)
            outcome.results += recorded.recorded
            for status, ids in recorded.available.items():
                if ids:
                    if ctx.pending is not None:
                        send = ctx.pending.emit
                    else:
                        from shared.events.outbox import emit as send  # noqa: PLC0415 — the ORM's unit of work
                    send(uow, catalog.RESULT_AVAILABLE, patient_id, catalog.ResultAvailable(
                        patient_id=patient_id, order_id=done.order_id, result_ids=ids, status=status))  # type: ignore[arg-type]
    if group.observations:
        recorded = record_results(uow, patient_id, None, group.observations, ctx.stamp, ctx.message_id, warnings,
                                  keys=observation_keys(group.observations, ctx.stamp), pending=ctx.pending)
        outcome.observations += recorded.recorded
    _link_children(uow, patient_id, group.orders, keys, written, warnings, ctx.pending)
    return outcome


def _parent_order(uow: UnitOfWork, patient_id: uuid.UUID, link: ParentLink, keys: list[lis_orders.OrderKeys],
                  written: dict[int, uuid.UUID], pending: Pending | None) -> uuid.UUID | None:
    wanted = lis_orders.parent_keys(link)
    if wanted is None:
        return None
    for index, key in enumerate(keys):  # the parent is usually in the same message
        if key.names_same_order(wanted):
            return written[index]
    if pending is not None:
        pending.flush(uow)  # the read below must see the orders written above
    return lis_orders.find_order(uow, wanted, patient_id)


def _link_children(uow: UnitOfWork, patient_id: uuid.UUID, orders: tuple[OrderData, ...],
                   keys: list[lis_orders.OrderKeys], written: dict[int, uuid.UUID], warnings: Warnings,
                   pending: Pending | None = None) -> None:
    """Set parent_order_id/parent_result_id of the group's child orders: one read, one write."""
    links: list[tuple[uuid.UUID, uuid.UUID, ParentLink]] = []
    for index, order in enumerate(orders):
        if order.parent is None:
            continue
        parent = _parent_order(uow, patient_id, order.parent, keys, written, pending)
        if parent is None or parent == written[index]:
            warnings.add("parent_unknown:OBR-29")
            continue
        links.append((written[index], parent, order.parent))
    if not links:
        return
    if isinstance(uow, DriverUnitOfWork):
        raise NeedsOrm("child orders to link")
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import LabOrder, LabResult  # noqa: PLC0415

    _ORDERS = LabOrder.__table__  # noqa: N806
    if pending is not None:
        pending.flush(uow)  # the results and orders read and updated below must be written first
    candidates = uow.session.execute(
        sa.select(LabResult.id, LabResult.order_id, LabResult.code, LabResult.code_display, LabResult.sub_id)
        .where(LabResult.order_id.in_({parent for _, parent, _ in links}))
        .order_by(LabResult.result_key)
    ).all()
    values: list[dict[str, Any]] = []
    for child, parent, link in links:
        result = next((r.id for r in candidates if r.order_id == parent and _is_parent_result(r, link)), None)
        values.append({"child": child, "parent": parent, "result": result})
    rows = sa.values(sa.column("child", sa.Uuid), sa.column("parent", sa.Uuid), sa.column("result", sa.Uuid),
                     name="links").data([(v["child"], v["parent"], v["result"]) for v in values])
    uow.session.execute(
        sa.update(_ORDERS).where(_ORDERS.c.id == rows.c.child)
        .where(sa.or_(_ORDERS.c.parent_order_id.is_distinct_from(rows.c.parent),
                      _ORDERS.c.parent_result_id.is_distinct_from(rows.c.result)))
        .values(parent_order_id=rows.c.parent, parent_result_id=rows.c.result)
    )


def _is_parent_result(row: Any, link: ParentLink) -> bool:
    code = link.result_code
    if code is None:
        return False
    same_code = (row.code == code.code) if code.code else (row.code_display == code.display)
    return same_code and (link.result_sub_id is None or row.sub_id == link.result_sub_id)
