"""Whether critical-alert work is waiting, asked with SQL text on the driver pool before the ORM (no
SQLAlchemy): the common answer is no, and an instance woken from zero should not load SQLAlchemy, the
models and their mappers only to find that out (``tests/unit/test_cold_imports.py``).

- `any_critical`: is any of a ``result.available`` event's results critical? Most are not. It reads
  the result columns ``alerts.raise_alerts`` judges and applies the same rule (``rules.critical_reason``,
  with the settings' ranges); when it finds one, notify runs ``raise_alerts`` on the ORM's unit of
  work as before, which reads them again in its own transaction and raises each alert once.
- `any_escalation_due`: is an open alert past its escalation time (``alerts.escalate_due``'s
  condition)? The ``critical-escalation`` job ticks every minute and mostly finds none.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from shared.critical.rules import critical_reason
from shared.db import driver_connection, wire
from shared.settings import get_settings

_RESULTS = "SELECT abnormal_flags, value_type, value, code FROM lab_results WHERE id = ANY(%s::uuid[])"
_ESCALATION_DUE = ("SELECT EXISTS (SELECT 1 FROM critical_alerts WHERE status = 'open' AND escalated_at IS NULL "
                   "AND escalate_at <= %s::timestamptz)")


def any_critical(result_ids: Iterable[uuid.UUID]) -> bool:
    """Whether a result among ``result_ids`` is critical by ``rules.critical_reason`` (one statement)."""
    ids = list(result_ids)
    if not ids:
        return False
    ranges = get_settings().critical_ranges
    with driver_connection() as con:  # autocommit: one read
        rows = wire.rows(con, _RESULTS, (ids,), prepared=True)
    return any(critical_reason(flags or [], value_type, value, code, ranges) is not None
               for flags, value_type, value, code in rows)


def any_escalation_due(now: datetime) -> bool:
    """Whether an open alert not escalated yet has ``escalate_at`` at or before ``now`` (one statement)."""
    with driver_connection() as con:  # autocommit: one read
        return bool(wire.rows(con, _ESCALATION_DUE, (now,), prepared=True)[0][0])
