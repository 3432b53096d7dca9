"""Apply one parsed LIS message to the database: the mapping contract, by message type.

* ADT A01/A04/A05/A28 register, A08/A31 update, other ADT events update demographics only;
  A40 merges the MRG-1 patient into the PID patient (the registry's merge).
* ORM^O01, OML^O21/O33 (any OML) create or change orders; ORU^R01/OUL^R22 (any ORU/OUL)
  record results, creating an unknown order.
* Anything else is ``ignored`` with the reason ``unsupported_type:<MSH-9>``.

Every message with a PID is a demographic source: each field keeps the newest message's value
(per-field stamps), so the result does not depend on the order of arrival. Runs inside the
caller's savepoint; raises `Quarantine` (roll back, store as quarantined) or `ConcurrentChange`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared import audit
from shared.auth import SYSTEM_LIS
from shared.db import UnitOfWork
from shared.events import catalog
from shared.events.outbox import emit
from shared.hl7.model import Message
from shared.lis import merge as lis_merge
from shared.lis import orders as lis_orders
from shared.lis import patients as lis_patients
from shared.lis.errors import Quarantine
from shared.lis.ordering import Stamp
from shared.lis.results import record_results
from shared.lis.values import Warnings, demographics

ORDER_TYPES = frozenset({"ORM", "OML"})
_CODE = re.compile(r"[A-Z0-9]{3}")
RESULT_TYPES = frozenset({"ORU", "OUL"})


@dataclass
class Applied:
    """What applying a message did (ids, counts and codes only)."""

    status: str  # processed | ignored
    reason: str | None = None
    patient_id: uuid.UUID | None = None
    patient: str = "none"  # created | updated | unchanged | none
    changed: list[str] = field(default_factory=list)
    orders_created: int = 0
    orders_updated: int = 0
    results: int = 0
    merged_from: uuid.UUID | None = None


@dataclass(frozen=True)
class MessageContext:
    message_id: uuid.UUID
    stamp: Stamp
    facility: str
    control_id: str


def apply_message(uow: UnitOfWork, ctx: MessageContext, message: Message, warnings: Warnings) -> Applied:
    kind = message.header.message_type
    if kind not in ("ADT", *ORDER_TYPES, *RESULT_TYPES):
        return Applied(status="ignored", reason="unsupported_type" + _code_suffix(kind, message.header.trigger_event))
    if message.extra_patient_groups:
        # The parser maps only the first patient group; acknowledging the rest as done would lose them.
        raise Quarantine("multiple_patient_groups")
    if kind == "ADT":
        outcome = _adt(uow, ctx, message, warnings)
    else:
        outcome = _orders(uow, ctx, message, warnings, results=kind in RESULT_TYPES)
    audit.record(uow, SYSTEM_LIS, "lis.message.apply", [p for p in (outcome.patient_id, outcome.merged_from) if p],
                 details=_audit_details(ctx, message, outcome))
    return outcome


def _code_suffix(*parts: str | None) -> str:
    """``:ORU^R01`` when MSH-9 holds HL7 codes, else nothing.

    Reasons are logged and returned; MSH-9 is message content, and a sender that shifts fields
    puts patient data there — so only what has the shape of a code (three letters or digits) is
    ever quoted.
    """
    present = [p for p in parts if p]
    if present and all(_CODE.fullmatch(p) for p in present):
        return ":" + "^".join(present)
    return ""


def _audit_details(ctx: MessageContext, message: Message, outcome: Applied) -> dict[str, Any]:
    return {
        "lis_message_id": str(ctx.message_id),
        "message_type": _code_suffix(message.header.message_type, message.header.trigger_event).lstrip(":") or None,
        "patient": outcome.patient,
        "changed": outcome.changed,
        "orders_created": outcome.orders_created,
        "orders_updated": outcome.orders_updated,
        "results": outcome.results,
    }


def resolve_patient(uow: UnitOfWork, ctx: MessageContext, message: Message, warnings: Warnings) -> Applied:
    """Find (and lock) or create the message's patient and apply its demographics."""
    assert message.patient is not None
    keys = lis_patients.identifier_keys(message.patient.identifiers, warnings)
    if not keys:
        raise Quarantine("missing_field:PID-3")
    fields = demographics(message.patient, warnings)
    found = lis_patients.find_and_lock(uow, keys)
    if found is None:
        created = lis_patients.create_patient(uow, keys, fields, ctx.stamp, ctx.control_id)
        if created.probable_duplicates:
            warnings.add("probable_duplicate")
        return Applied(status="processed", patient_id=created.patient_id, patient="created")
    row = found.row
    lis_patients.add_identifiers(uow, row.id, [k for k in keys if (k[0], k[1]) not in found.held])
    changed = lis_patients.update_demographics(uow, row, found.stamps, fields, ctx.stamp, ctx.control_id)
    return Applied(status="processed", patient_id=row.id, patient="updated" if changed else "unchanged", changed=changed)


def _adt(uow: UnitOfWork, ctx: MessageContext, message: Message, warnings: Warnings) -> Applied:
    if message.patient is None:
        raise Quarantine("missing_segment:PID")
    outcome = resolve_patient(uow, ctx, message, warnings)
    if message.header.trigger_event == "A40":
        if message.merge is None:
            raise Quarantine("missing_segment:MRG")
        outcome.merged_from = lis_merge.merge_prior(uow, outcome.patient_id, message.merge, warnings)
    elif message.merge is not None:
        warnings.add("merge_not_applied" + _code_suffix(message.header.trigger_event))
    return outcome


def _orders(uow: UnitOfWork, ctx: MessageContext, message: Message, warnings: Warnings, *, results: bool) -> Applied:
    keys = [
        lis_orders.order_keys(order, index, ctx.facility, ctx.control_id) for index, order in enumerate(message.orders)
    ]
    if message.patient is not None:
        outcome = resolve_patient(uow, ctx, message, warnings)
    else:
        # OML/OUL may leave out the PID: the patient is the one of an order we already know.
        found = {p for p in (lis_orders.find_order_patient(uow, k) for k in keys) if p is not None}
        if len(found) != 1:
            raise Quarantine("missing_segment:PID" if not found else "order_patient_mismatch")
        row = lis_patients.lock_patient(uow, found.pop())
        outcome = Applied(status="processed", patient_id=row.id, patient="unchanged")
    patient_id = outcome.patient_id
    assert patient_id is not None
    if not message.orders:
        raise Quarantine("missing_segment:ORC" if not results else "missing_segment:OBR")
    # Lock orders in a stable order (by key) so two messages touching the same orders cannot deadlock.
    for index in sorted(range(len(keys)), key=lambda i: (keys[i].placer or "", keys[i].filler or "")):
        order, key = message.orders[index], keys[index]
        done = lis_orders.apply_order(uow, patient_id, order, key, ctx.stamp, warnings)
        outcome.orders_created += done.created
        outcome.orders_updated += bool(done.changed)
        if order.results:
            recorded = record_results(uow, patient_id, done.order_id, order.results, ctx.stamp, ctx.message_id, warnings,
                                      new_order=done.created)
            outcome.results += recorded.recorded
            for status, ids in recorded.available.items():
                if ids:
                    emit(uow, catalog.RESULT_AVAILABLE, patient_id, catalog.ResultAvailable(
                        patient_id=patient_id, order_id=done.order_id, result_ids=ids, status=status))  # type: ignore[arg-type]
    return outcome
