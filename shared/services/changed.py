"""The step every audited change of a versioned row about a patient ends with: its version goes up
(the ETag a client must send back in If-Match), `updated_at` moves, the change is audited and its
event goes to the outbox — all in the caller's transaction (orders changed or cancelled through the
API, critical alerts escalated)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.events.outbox import emit
from shared.models.base import utcnow


def record_change(uow: UnitOfWork, row: Any, principal: Principal, action: str, event_type: str, event: BaseModel, *,
                  details: dict[str, Any], now: datetime | None = None) -> None:
    """`row` (a loaded, locked model with ``version``, ``updated_at`` and ``patient_id``) was changed by `principal`."""
    row.version += 1
    row.updated_at = now or utcnow()
    audit.record(uow, principal, action, [row.patient_id], details=details)
    emit(uow, event_type, row.patient_id, event)
