"""Apply one parsed LIS message to the database: the mapping contract, by message type.

* ADT A01/A04/A05/A28 register, A08/A31 update, other ADT events update demographics only;
  A34, A36, A39 and A40 merge the MRG patient into the PID patient (the registry's merge).
* ORM^O01, OML^O21/O33 (any OML) create or change orders; ORU^R01/OUL^R22 (any ORU/OUL)
  record results, creating an unknown order; ORU's patient-level OBX are stored for the patient.
* Anything else is ``ignored`` with the reason ``unsupported_type:<MSH-9>``.

A message is one or more patient groups (ORU's PATIENT_RESULT, ADT_A39's PATIENT, …), applied in
message order, all in the message's transaction. With several groups each is applied in its own
savepoint: a group that is itself invalid (the parser's reason, or a `Quarantine` raised while
applying it) is rolled back alone and the others stay applied; the message is then stored as
``quarantined`` with the first invalid group's reason (``group<n>:<reason>``), so the operator
sees it and a replay after the fix applies the rest (re-applying a group is idempotent). When no
group could be applied the whole message is quarantined, as a message with one group is.

Every message with a PID is a demographic source: each field keeps the newest message's value
(per-field stamps), so the result does not depend on the order of arrival. Runs inside the
caller's savepoint; raises `Quarantine` (roll back, store as quarantined) or `ConcurrentChange`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from shared.auth import SYSTEM_LIS
from shared.hl7.errors import in_group
from shared.hl7.model import Message, PatientGroup
from shared.lis import merge as lis_merge
from shared.lis import patients as lis_patients
from shared.lis.errors import Quarantine
from shared.lis.order_group import apply_orders
from shared.lis.outcome import Applied, MessageContext
from shared.lis.values import Warnings, demographics

if TYPE_CHECKING:
    from shared.db import UnitOfWork

__all__ = ["Applied", "MessageContext", "apply_message", "resolve_patient"]

ORDER_TYPES = frozenset({"ORM", "OML"})
RESULT_TYPES = frozenset({"ORU", "OUL"})
# Merge events applied as the registry's merge (the others that carry MRG update demographics only).
MERGE_EVENTS = frozenset({"A34", "A36", "A39", "A40"})
_CODE = re.compile(r"[A-Z0-9]{3}")


def apply_message(uow: UnitOfWork, ctx: MessageContext, message: Message, warnings: Warnings) -> Applied:
    kind = message.header.message_type
    if kind not in ("ADT", *ORDER_TYPES, *RESULT_TYPES):
        return Applied(status="ignored", reason="unsupported_type" + _code_suffix(kind, message.header.trigger_event))
    if len(message.groups) == 1:
        outcome = _apply_group(uow, ctx, message, 0, warnings)
    else:
        outcome = _apply_groups(uow, ctx, message, warnings)
    patients, details = [*outcome.patient_ids, *outcome.merged_from], _audit_details(ctx, message, outcome)
    if ctx.pending is not None:
        ctx.pending.audit(SYSTEM_LIS, "lis.message.apply", patients, details)
    else:
        from shared import audit  # noqa: PLC0415 — SQLAlchemy: the ORM's unit of work is in use

        audit.record(uow, SYSTEM_LIS, "lis.message.apply", patients, details=details)
    return outcome


def _apply_groups(uow: UnitOfWork, ctx: MessageContext, message: Message, warnings: Warnings) -> Applied:
    total = Applied(status="processed")
    problems: list[str] = []
    for index, group in enumerate(message.groups):
        if group.problem is not None:
            problems.append(in_group(index, group.problem))
            continue
        kept = len(warnings)
        try:
            with uow.session.begin_nested():
                done = _apply_group(uow, ctx, message, index, warnings)
        except Quarantine as q:
            del warnings[kept:]  # what the rolled-back group said is not what happened
            problems.append(in_group(index, q.reason))
            continue
        total.add(done)
    if not total.patient_ids:
        raise Quarantine(problems[0])
    if problems:
        total.status, total.reason = "quarantined", problems[0]
        for problem in problems[1:]:
            warnings.add(problem)
        warnings.add(f"patient_groups_applied:{len(message.groups) - len(problems)}/{len(message.groups)}")
    return total


def _apply_group(uow: UnitOfWork, ctx: MessageContext, message: Message, index: int, warnings: Warnings) -> Applied:
    group = message.groups[index]
    if group.problem is not None:
        raise Quarantine(group.problem)
    if message.header.message_type == "ADT":
        return _adt(uow, ctx, message, group, warnings)
    # Orders are numbered across the message (keys of orders without numbers use the position).
    first = sum(len(g.orders) for g in message.groups[:index])
    return apply_orders(uow, ctx, group, warnings, results=message.header.message_type in RESULT_TYPES,
                        resolve=lambda: resolve_patient(uow, ctx, group, warnings), first_position=first)


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
        "orders_accepted": outcome.orders_accepted,
        "results": outcome.results,
        "observations": outcome.observations,
        "patient_groups": len(message.groups),
    }


def resolve_patient(uow: UnitOfWork, ctx: MessageContext, group: PatientGroup, warnings: Warnings) -> Applied:
    """Find (and lock) or create the group's patient and apply its demographics."""
    assert group.patient is not None
    keys = lis_patients.identifier_keys(group.patient.identifiers, warnings)
    if not keys:
        raise Quarantine("missing_field:PID-3")
    fields = demographics(group.patient, warnings)
    found = lis_patients.find_and_lock(uow, keys, ctx.found)
    if found is None:
        created = lis_patients.create_patient(uow, keys, fields, ctx)
        if created.probable_duplicates:
            warnings.add("probable_duplicate")
        return Applied(status="processed", patient_id=created.patient_id, patient="created")
    row = found.row
    lis_patients.add_identifiers(uow, row.id, [k for k in keys if (k[0], k[1]) not in found.held], ctx.pending)
    changed = lis_patients.update_demographics(uow, row, found, fields, ctx, warnings)
    return Applied(status="processed", patient_id=row.id, patient="updated" if changed else "unchanged", changed=changed)


def _adt(uow: UnitOfWork, ctx: MessageContext, message: Message, group: PatientGroup, warnings: Warnings) -> Applied:
    if group.patient is None:
        raise Quarantine("missing_segment:PID")
    outcome = resolve_patient(uow, ctx, group, warnings)
    event = message.header.trigger_event
    if event in MERGE_EVENTS:
        if group.merge is None:
            raise Quarantine("missing_segment:MRG")
        assert outcome.patient_id is not None
        merged = lis_merge.merge_prior(uow, outcome.patient_id, group.merge, warnings)
        outcome.merged_from = [merged] if merged else []
    elif group.merge is not None:
        warnings.add("merge_not_applied" + _code_suffix(event))
    return outcome

