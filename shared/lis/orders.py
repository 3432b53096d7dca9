"""Lab orders from LIS messages: found by placer or filler number, created when unknown, updated
under a row lock with the ordering rules of `shared.lis.ordering`.

* Keys: placer number (ORC-2/OBR-2) and filler number (ORC-3/OBR-3), each within its namespace —
  EI-2 (namespace id), else EI-3 (universal id), else ``""`` — so two systems' order numbers
  cannot collide. A number is found in its own namespace and in ``""`` (orders stored before
  namespaces were read, and senders that send none); a placer number also matches an order
  placed through the API (namespace ``patient-mgt``) whatever namespace the LIS echoes it under.
  A message without a namespace matches only ``""`` and API orders. Senders that reuse one
  number without namespaces for several orders: when the filler numbers differ they are different
  orders, and the later one is filed under its filler number alone (warning
  ``order_number_shared:ORC-2``). An order that has neither number gets a key derived from its
  message (MSH-4, MSH-10, position), so a redelivery cannot create it twice (and a different
  message under a reused MSH-10 cannot name the first one's order: its key carries the digest).
* An order found under another patient than the message's is never re-filed: the message is
  quarantined (``order_patient_mismatch``).
* Status only moves up the rank; code, priority, ordered-at and notes take the newest message's
  values (per-field stamps in ``lab_orders.lis_field_stamps``).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.db.driver_uow import DriverUnitOfWork, run
from shared.events import catalog
from shared.hl7.model import OrderData, ParentLink
from shared.ids import uuid4
from shared.instants import utcnow
from shared.lis import sql
from shared.lis.errors import ConcurrentChange, Quarantine
from shared.lis.order_acceptance import acceptance
from shared.lis.outcome import MessageContext
from shared.lis.pending import Pending
from shared.lis.ordering import CANCEL_CONTROLS, Stamp, higher_order_status, merge_fields, order_status, stamp_time
from shared.lis.patients import survivor
from shared.lis.values import Warnings, clean, safe_text
from shared.placer import PLACER_NAMESPACE as API_PLACER_NAMESPACE
from shared.prepared import PREPARED

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.db import UnitOfWork

LIS_NAMESPACE = ""
_NUMBER_MAX = 100
_NAMESPACE_MAX = 200


def _orders_table() -> sa.Table:
    from shared.models import LabOrder  # noqa: PLC0415 — the careful path's (SQLAlchemy)

    return LabOrder.__table__  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class OrderKeys:
    placer: str | None
    filler: str | None
    placer_namespace: str = LIS_NAMESPACE
    filler_namespace: str = LIS_NAMESPACE
    synthetic: bool = False  # the filler key was derived from the message (no number was sent)

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.placer or "", self.filler or "", self.placer_namespace, self.filler_namespace)

    def names_same_order(self, other: OrderKeys) -> bool:
        placer = bool(self.placer) and self.placer == other.placer and _ns_match(self.placer_namespace, other.placer_namespace)
        filler = bool(self.filler) and self.filler == other.filler and _ns_match(self.filler_namespace, other.filler_namespace)
        return placer or filler


def _ns_match(stored: str, incoming: str) -> bool:
    """Two namespaces of one number name the same system (or one of them is unknown)."""
    return stored == incoming or not stored or not incoming or stored == API_PLACER_NAMESPACE


def numbered_keys(order: OrderData) -> OrderKeys | None:
    """The keys of an order that carries a placer or filler number, else None (`order_keys`)."""
    placer = _number(order.placer_number, "ORC-2")
    filler = _number(order.filler_number, "ORC-3")
    if placer or filler:
        return OrderKeys(placer=placer, filler=filler, placer_namespace=_namespace(order.placer_namespace, "ORC-2"),
                         filler_namespace=_namespace(order.filler_namespace, "ORC-3"))
    return None


def order_keys(order: OrderData, ctx: MessageContext, position: int) -> OrderKeys:
    numbered = numbered_keys(order)
    if numbered is not None:
        return numbered
    # No number at all: one order per (message, position), stable across redeliveries and replays.
    synthetic = f"{ctx.control_id}#{position + 1}"
    if ctx.reused_control_id:
        synthetic += f"@{ctx.digest[:16]}"
    if len(synthetic) > _NUMBER_MAX:
        synthetic = "sha256:" + hashlib.sha256(synthetic.encode()).hexdigest()
    return OrderKeys(placer=None, filler=synthetic, filler_namespace=f"lis-message:{ctx.facility}"[:200], synthetic=True)


def parent_keys(link: ParentLink) -> OrderKeys | None:
    """The keys of the order a child order names as its parent (OBR-29), or None."""
    placer = _number(link.placer_number, "OBR-29")
    filler = _number(link.filler_number, "OBR-29")
    if not placer and not filler:
        return None
    return OrderKeys(placer=placer, filler=filler, placer_namespace=_namespace(link.placer_namespace, "OBR-29"),
                     filler_namespace=_namespace(link.filler_namespace, "OBR-29"))


def _number(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    value = safe_text(value).strip()
    if len(value) > _NUMBER_MAX:
        raise Quarantine(f"invalid_field:{where}")
    return value or None


def _namespace(value: str | None, where: str) -> str:
    value = safe_text(value or "").strip()
    if len(value) > _NAMESPACE_MAX:
        raise Quarantine(f"invalid_field:{where}")
    return value


def _fields(order: OrderData, warnings: Warnings) -> dict[str, Any]:
    code = None
    if order.code.code or order.code.display:
        code = {
            "code_system": clean(order.code.system, 200, warnings, "OBR-4.3"),
            "code": clean(order.code.code, 100, warnings, "OBR-4.1"),
            "code_display": clean(order.code.display, 300, warnings, "OBR-4.2"),
        }
    notes = "\n".join(n for n in order.notes if n is not None).strip() or None
    return {
        "code": code,
        "priority": clean(order.priority, 32, warnings, "OBR-27"),
        "ordered_at": order.ordered_at.isoformat() if order.ordered_at else None,
        "notes": clean(notes, 20000, warnings, "NTE"),
    }


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "code":
            columns.update(value)
        elif key == "ordered_at":
            columns[key] = datetime.fromisoformat(value)
        else:
            columns[key] = value
    return columns


def _current(row: Any) -> dict[str, Any]:
    return {
        "code": {"code_system": row.code_system, "code": row.code, "code_display": row.code_display}
        if (row.code or row.code_display) else None,
        "priority": row.priority,
        "ordered_at": row.ordered_at.isoformat() if row.ordered_at else None,
        "notes": row.notes,
    }


def find_order_patient(uow: UnitOfWork, keys: OrderKeys) -> uuid.UUID | None:
    """The patient of an existing order with these keys (for messages without a PID)."""
    row, _ = _find(uow, keys, None, lock=False)
    return row.patient_id if row is not None else None


def find_order(uow: UnitOfWork, keys: OrderKeys, patient_id: uuid.UUID) -> uuid.UUID | None:
    """The id of the patient's order these keys name (a child order's parent), or None."""
    try:
        row, _ = _find(uow, keys, patient_id, lock=False)
    except Quarantine:
        return None
    return row.id if row is not None and row.patient_id == patient_id else None


def _compatible(row: Any, keys: OrderKeys) -> bool:
    """Every number both sides have agrees, namespace by namespace (a shared placer number with
    different filler numbers means two orders: some senders reuse ORC-2.1 without a namespace)."""
    if keys.placer and row.placer_number not in (None, keys.placer) and _ns_match(row.placer_namespace, keys.placer_namespace):
        return False
    return not (keys.filler and row.filler_number not in (None, keys.filler)
                and _ns_match(row.filler_namespace, keys.filler_namespace))


def _exact(row: Any, keys: OrderKeys) -> bool:
    return bool((keys.placer and row.placer_number == keys.placer and row.placer_namespace == keys.placer_namespace)
                or (keys.filler and row.filler_number == keys.filler and row.filler_namespace == keys.filler_namespace))


# The namespaces a number is looked up in, as a fixed number of scalar parameters (the set repeated
# to fill them): see `_find_statement`.
_PLACER_NAMESPACES = 3
_FILLER_NAMESPACES = 2


def _namespace_params(prefix: str, namespaces: set[str], count: int) -> dict[str, str]:
    """``count`` parameters ``prefix0…`` naming every namespace of the set (repeated to fill them).

    More namespaces than parameters would drop some from the lookup and miss an order: refused, not
    asserted (``python -O`` drops asserts)."""
    ordered = sorted(namespaces)
    if not 0 < len(ordered) <= count:
        raise ValueError(f"{len(ordered)} namespaces for {count} parameters of {prefix}")
    return {f"{prefix}{i}": ordered[i % len(ordered)] for i in range(count)}


@functools.cache
def _find_statement(placer: bool, filler: bool, lock: bool) -> sa.Select[Any]:
    """Orders by placer and/or filler number, each within a list of namespaces (built once per shape).

    Table columns, not the mapped class's (no ORM loading of the rows), and the namespaces as a fixed
    number of scalar parameters (``IN (…)``, the set repeated to fill them), so the text is fixed
    whatever their number: prepared per connection. With scalars the generic plan costs what a custom
    plan costs and PostgreSQL keeps it from the sixth execution; with one array parameter (``= ANY``)
    the generic plan assumed 10 namespaces, looked dearer than a custom plan of 2–3, and the lookup was
    planned again on every message (≈ 0.2 ms of the backend's CPU, four times its execution) — and read
    through an InitPlan instead, the 10 assumed probes made a scan of a small table look cheaper, a plan
    then kept as the table grew. ``shared.lis.sql.find_orders`` is its text, for the fast path."""
    import sqlalchemy as sa  # noqa: PLC0415

    t = _orders_table()
    conditions = []
    if placer:
        namespaces = [sa.bindparam(f"placer_namespace{i}", type_=sa.Text) for i in range(_PLACER_NAMESPACES)]
        conditions.append(sa.and_(t.c.placer_namespace.in_(namespaces), t.c.placer_number == sa.bindparam("placer")))
    if filler:
        namespaces = [sa.bindparam(f"filler_namespace{i}", type_=sa.Text) for i in range(_FILLER_NAMESPACES)]
        conditions.append(sa.and_(t.c.filler_namespace.in_(namespaces), t.c.filler_number == sa.bindparam("filler")))
    stmt = sa.select(t).where(sa.or_(*conditions)).order_by(t.c.id)
    return stmt.with_for_update() if lock else stmt


def _params(keys: OrderKeys) -> dict[str, Any]:
    """The lookup's values by name (`_find_statement`'s parameters)."""
    params: dict[str, Any] = {}
    if keys.placer:
        params.update(placer=keys.placer, **_namespace_params(
            "placer_namespace", {keys.placer_namespace, LIS_NAMESPACE, API_PLACER_NAMESPACE}, _PLACER_NAMESPACES))
    if keys.filler:
        namespaces = {keys.filler_namespace} if keys.synthetic else {keys.filler_namespace, LIS_NAMESPACE}
        params.update(filler=keys.filler, **_namespace_params("filler_namespace", namespaces, _FILLER_NAMESPACES))
    return params


def find_text(keys: OrderKeys, *, lock: bool) -> tuple[str, list[Any]]:
    """The lookup as SQL text and its values (`shared.lis.sql.find_orders`): what `_find` sends on the
    fast path, and what the consumer's fast path sends ahead with the claim (`prefetched` rows)."""
    params = _params(keys)
    args: list[Any] = []
    if keys.placer:
        args += [params[f"placer_namespace{i}"] for i in range(_PLACER_NAMESPACES)] + [keys.placer]
    if keys.filler:
        args += [params[f"filler_namespace{i}"] for i in range(_FILLER_NAMESPACES)] + [keys.filler]
    return sql.find_orders(bool(keys.placer), bool(keys.filler), lock, _PLACER_NAMESPACES, _FILLER_NAMESPACES), args


def _find(uow: UnitOfWork, keys: OrderKeys, patient_id: uuid.UUID | None, *, lock: bool,
          direct: bool = False, prefetched: list[Any] | None = None) -> tuple[Any, OrderKeys]:
    """(the order these keys name or None, the keys a new order may take); `direct`: on the fast
    path, as SQL text (`find_text`); `prefetched`: the rows of that text, read (and locked) already
    in this transaction with nothing written to ``lab_orders`` since."""
    rows: Any
    if prefetched is not None:
        rows = prefetched
    elif direct or isinstance(uow, DriverUnitOfWork):
        rows = run(uow, *find_text(keys, lock=lock))
    else:
        statement = _find_statement(bool(keys.placer), bool(keys.filler), lock)
        rows = uow.session.execute(statement, _params(keys), execution_options=PREPARED).all()
    matches = [row for row in rows if _compatible(row, keys)]
    # Prefer the order in the same namespace, then the patient's own, then one that has both numbers.
    matches.sort(key=lambda r: (not _exact(r, keys), r.patient_id != patient_id, r.placer_number != keys.placer,
                                r.filler_number != keys.filler))
    found = matches[0] if matches else None
    others = [row for row in rows if row is not found]
    placer_taken = bool(keys.placer) and any(
        row.placer_number == keys.placer and row.placer_namespace == keys.placer_namespace for row in others)
    filler_taken = bool(keys.filler) and any(
        row.filler_number == keys.filler and row.filler_namespace == keys.filler_namespace for row in others)
    free = OrderKeys(placer=None if placer_taken else keys.placer, filler=None if filler_taken else keys.filler,
                     placer_namespace=keys.placer_namespace, filler_namespace=keys.filler_namespace,
                     synthetic=keys.synthetic)
    if found is None and not free.placer and not free.filler:
        raise Quarantine("order_number_conflict")
    return found, free


@dataclass
class OrderOutcome:
    order_id: uuid.UUID
    created: bool
    changed: list[str]
    status: str
    accepted: bool = False  # this message told us the LIS accepted the order (shared.lis.order_acceptance)


def apply_order(
    uow: UnitOfWork, patient_id: uuid.UUID, order: OrderData, keys: OrderKeys, stamp: Stamp, warnings: Warnings,
    *, pending: Pending | None = None, prefetched: list[Any] | None = None,
) -> OrderOutcome:
    """Create or update the order; with `pending`, its writes wait for the message's last statement;
    `prefetched`: its lookup's rows, read already (see `_find`)."""
    fields = _fields(order, warnings)
    asserted = order_status(order.control, order.status, (r.status for r in order.results))
    if order.status and asserted is None and (order.control or "").upper() not in CANCEL_CONTROLS:
        warnings.add("unknown_status:ORC-5")
    row, free = _find(uow, keys, patient_id, lock=True, direct=pending is not None, prefetched=prefetched)
    if row is None:
        if free != keys:
            warnings.add("order_number_shared:ORC-2" if free.placer != keys.placer else "order_number_shared:ORC-3")
        return _create(uow, patient_id, free, fields, asserted or "requested", stamp, pending)
    changes, new_stamps = merge_fields(_current(row), row.lis_field_stamps or {}, fields, stamp)
    values: dict[str, Any] = _columns(changes)
    if row.patient_id != patient_id:
        if survivor(uow, row.patient_id) != patient_id:
            raise Quarantine("order_patient_mismatch")
        # Filed under a patient since merged into this one: follow the merge.
        values["patient_id"], changes["patient_id"] = patient_id, patient_id
        warnings.add("order_followed_merge")
    status = higher_order_status(row.status, asserted) or row.status
    if status != row.status:
        values["status"] = status
        changes["status"] = status
    # Adopt a number the order lacks, unless another order holds it (then both keep theirs).
    if free.placer and row.placer_number is None:
        values["placer_number"], changes["placer_number"] = free.placer, free.placer
        values["placer_namespace"] = free.placer_namespace
    if free.filler and row.filler_number is None and not free.synthetic:
        values["filler_number"], changes["filler_number"] = free.filler, free.filler
        values["filler_namespace"] = free.filler_namespace
    if free != keys:
        warnings.add("order_number_shared:ORC-2" if free.placer != keys.placer else "order_number_shared:ORC-3")
    accepted = acceptance(row, order, None if keys.synthetic else keys.filler, stamp_time(stamp))
    values.update(accepted)
    changes.update(accepted)
    if new_stamps:
        values["lis_field_stamps"] = {**(row.lis_field_stamps or {}), **new_stamps}
    newest = stamp_time(stamp)
    if row.lis_applied_at is None or newest > row.lis_applied_at:
        values["lis_applied_at"] = newest
    if changes:
        values["updated_at"] = utcnow()
    if values and pending is not None:
        pending.update_row("lab_orders", row.id, values, bump_version=bool(changes))
    elif values:
        import sqlalchemy as sa  # noqa: PLC0415

        table = _orders_table()
        if changes:
            values["version"] = table.c.version + 1
        uow.session.execute(sa.update(table).where(table.c.id == row.id).values(**values))
    if changes:
        event = catalog.OrderEvent(patient_id=patient_id, order_id=row.id, status=status)
        if pending is not None:
            pending.emit(uow, catalog.ORDER_UPDATED, patient_id, event)
        else:
            from shared.events.outbox import emit  # noqa: PLC0415

            emit(uow, catalog.ORDER_UPDATED, patient_id, event)
    return OrderOutcome(order_id=row.id, created=False, changed=sorted(changes), status=status,
                        accepted="lis_accepted_at" in accepted)


def _create(uow: UnitOfWork, patient_id: uuid.UUID, keys: OrderKeys, fields: dict[str, Any], status: str,
            stamp: Stamp, pending: Pending | None) -> OrderOutcome:
    now = utcnow()
    present = {k: v for k, v in fields.items() if v is not None}
    order_id = uuid4()
    row = dict(id=order_id, patient_id=patient_id, placer_namespace=keys.placer_namespace, placer_number=keys.placer,
               filler_namespace=keys.filler_namespace, filler_number=keys.filler, status=status, source="lis",
               lis_applied_at=stamp_time(stamp), lis_field_stamps={k: list(stamp) for k in present}, version=1,
               created_at=now, updated_at=now, **_columns(present))
    event = catalog.OrderEvent(patient_id=patient_id, order_id=order_id, status=status)
    if pending is not None:
        pending.insert_rows("lab_orders", [row], reason="order_created_concurrently")
        pending.emit(uow, catalog.ORDER_CREATED, patient_id, event)
        return OrderOutcome(order_id=order_id, created=True, changed=[], status=status)
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    from shared.events.outbox import emit  # noqa: PLC0415

    table = _orders_table()
    insert = pg_insert(table).values(row).on_conflict_do_nothing().returning(table.c.id)
    if uow.session.execute(insert).first() is None:
        raise ConcurrentChange("order_created_concurrently")
    emit(uow, catalog.ORDER_CREATED, patient_id, event)
    return OrderOutcome(order_id=order_id, created=True, changed=[], status=status)

