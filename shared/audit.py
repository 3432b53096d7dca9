"""Audit every read and write of patient data, in the same transaction as the work."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from shared.auth import Principal
from shared.db import UnitOfWork
from shared.log import current_request_id
from shared.models import AuditEntry


def record(
    uow: UnitOfWork,
    principal: Principal,
    action: str,
    patient_ids: Iterable[uuid.UUID],
    *,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit row. ``details`` holds ids, counts and codes only — never patient data."""
    # A Core insert on the session's connection (same transaction): every read writes one of
    # these, and the ORM's bulk-insert path costs more CPU than the statement itself.
    uow.session.connection().execute(
        sa.insert(AuditEntry.__table__).values(
            principal=principal.name,
            principal_id=principal.key_id,
            action=action,
            patient_ids=list(dict.fromkeys(patient_ids)),
            request_id=current_request_id(),
            outcome=outcome,
            details=details,
        )
    )


def query(
    uow: UnitOfWork,
    *,
    patient_id: uuid.UUID | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    stmt = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if patient_id is not None:
        stmt = stmt.where(AuditEntry.patient_ids.contains([patient_id]))
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(uow.session.scalars(stmt))
