"""The LIS's acceptance of an order placed here, read from an order message it sends later.

The adapter records the acceptance the LIS answers synchronously (its ORR^O02/ORL^O22,
`shared.mllp.order_status`). A LIS may instead (or also) accept later, in an ORM^O01 or OML^O21 of
its own: ORC-1 ``OK`` (order accepted), or any non-refusing ORC-1 with the filler number it gave
the order in ORC-3. `acceptance` says what that message sets on the order, under its row lock:

* ``lis_accepted_at`` — the message's MSH-7; with several such messages (redelivered, or arriving
  out of order) the earliest, so the result does not depend on the order of arrival;
* ``sent_to_lis_at`` when still empty — the LIS has the order, whatever became of the ACK;
* the filler number itself is adopted by `shared.lis.orders.apply_order` as for any order.

Only orders placed through the API (``source = api``) are "accepted": an order the LIS created
itself has nothing to accept. ORC-1 ``UA``/``UC``/``UX``/``UD`` (unable to accept, cancel, change,
discontinue) and the cancel controls never accept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.hl7.model import OrderData
from shared.lis.ordering import CANCEL_CONTROLS

ACCEPT_CONTROL = "OK"
REFUSING_CONTROLS = frozenset({"UA", "UC", "UX", "UD", "UM", "UN", "UR", "UF", "UH"})


def accepts(order: OrderData, filler_number: str | None) -> bool:
    """The message tells that the LIS accepted this order (`filler_number`: the ORC-3 it carried, if any)."""
    control = (order.control or "").strip().upper()
    if control in REFUSING_CONTROLS or control in CANCEL_CONTROLS:
        return False
    return control == ACCEPT_CONTROL or bool(filler_number)


def acceptance(row: Any, order: OrderData, filler_number: str | None, at: datetime) -> dict[str, Any]:
    """The columns to write on the order `row` (locked) for this message; empty when nothing changes."""
    if row.source != "api" or not accepts(order, filler_number):
        return {}
    values: dict[str, Any] = {}
    if row.lis_accepted_at is None or at < row.lis_accepted_at:
        values["lis_accepted_at"] = at
    if row.sent_to_lis_at is None:
        values["sent_to_lis_at"] = at
    return values
