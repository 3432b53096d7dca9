"""Whether any of a ``result.available`` event's results is critical: SQL text on the driver pool, no
SQLAlchemy.

Most ``result.available`` events notify without raising an alert: their results are not critical. A
notify instance woken from zero by one should not load SQLAlchemy, the models and their mappers only
to find that out (``tests/unit/test_cold_imports.py``). `any_critical` reads the result columns
``alerts.raise_alerts`` judges and applies the same rule (``rules.critical_reason``, with the settings'
ranges); when it finds one, the caller runs ``raise_alerts`` on the ORM's unit of work as before,
which reads them again in its own transaction and raises each alert once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from shared.critical.rules import critical_reason
from shared.db import driver_connection, wire
from shared.settings import get_settings

_RESULTS = "SELECT abnormal_flags, value_type, value, code FROM lab_results WHERE id = ANY(%s::uuid[])"


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
