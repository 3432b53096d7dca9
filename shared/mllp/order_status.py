"""What the LIS answered, written back to the order: `sent_to_lis_at` once it acknowledged the
order message, `lis_accepted_at` and the filler number once it accepted the order (ORC-1 ``OK`` or a
filler number in ORC-3 of its ORR/ORL). The order is found by the placer number the message carried
(ORC-2: number^namespace). Conditional writes only: the first acknowledgement's time is kept, a
filler number already known is never replaced, and one another order holds is not taken (logged).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shared.db import unit_of_work
from shared.log import get_logger
from shared.models import LabOrder
from shared.models.base import utcnow

from .ack import read_msh
from .sender import Outcome

log = get_logger(__name__)


def placer_of(message: bytes) -> tuple[str, str] | None:
    """(number, namespace) from ORC-2 of a message we rendered; None when it has none."""
    msh = read_msh(message)
    if msh is None:
        return None
    for line in message.split(b"\r"):
        if line.startswith(b"ORC" + msh.field):
            fields = line.split(msh.field)
            if len(fields) > 2 and fields[2]:
                number, _, namespace = fields[2].decode("utf-8", "replace").partition(msh.component.decode())
                return number, namespace.split(msh.component.decode(), 1)[0]
    return None


def record_outcome(message: bytes, outcome: Outcome) -> str:
    """Write the LIS's answer to the order; returns what was done (a PHI-free code)."""
    if not outcome.delivered:
        return "not_delivered"
    placer = placer_of(message)
    if placer is None:
        return "no_placer_number"
    number, namespace = placer
    now = utcnow()
    where = (LabOrder.placer_number == number, LabOrder.placer_namespace == namespace)
    accepted = outcome.last.order_control == "OK" or bool(outcome.last.filler_number)
    values = {"sent_to_lis_at": sa.func.coalesce(LabOrder.sent_to_lis_at, now),
              "lis_accepted_at": sa.func.coalesce(LabOrder.lis_accepted_at, now) if accepted else LabOrder.lis_accepted_at,
              "version": LabOrder.version + 1, "updated_at": now}
    filler = (outcome.last.filler_number or "")[:100]
    # One transaction: a reader never sees the acceptance without the filler number it came with.
    with unit_of_work() as uow:
        conflict = False
        if filler:
            try:
                with uow.session.begin_nested():  # the filler number may belong to another order (unique)
                    found = uow.session.execute(sa.update(LabOrder).where(*where).values(
                        **values, filler_number=sa.func.coalesce(LabOrder.filler_number, filler))).rowcount
            except IntegrityError:
                conflict = True
        if not filler or conflict:
            found = uow.session.execute(sa.update(LabOrder).where(*where).values(**values)).rowcount
    if not found:
        return "unknown_order"
    if conflict:
        log.warning("filler number from the LIS already belongs to another order; not recorded",
                    extra={"fields": {"code": "filler_number_conflict"}})
        return "filler_number_conflict"
    return "accepted" if accepted else "sent"
