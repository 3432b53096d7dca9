"""Versions of patients and history entries: one JSON snapshot per version, written in the same
transaction as the change (``resource_versions`` is append-only).

Each change records the version it replaces as a ``baseline`` when no row holds it yet (a
patient written before versioning, or by a path that did not record it) and then the new
version, so the previous version is always kept.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.log import current_request_id
from shared.models import ResourceVersion
from shared.models.base import utcnow
from shared.services import cursor, provenance

if TYPE_CHECKING:
    from shared.schemas.versions import VersionEntry, VersionQuery

UNIQUE = "uq_resource_versions_resource_type_resource_id_version"


def _owner(resource_type: str, resource: BaseModel) -> uuid.UUID:
    return getattr(resource, "patient_id") if resource_type == "history" else getattr(resource, "id")


def _insert(
    uow: UnitOfWork, resource_type: str, resource: BaseModel, change: str, changed_by: str, changed_at: datetime,
    *, if_absent: bool, field_sources: dict[str, Any] | None = None,
) -> None:
    _insert_snapshot(uow, resource_type, getattr(resource, "id"), _owner(resource_type, resource),
                     getattr(resource, "version"), resource.model_dump(mode="json"), change, changed_by, changed_at,
                     if_absent=if_absent, field_sources=field_sources)


def _insert_snapshot(
    uow: UnitOfWork, resource_type: str, resource_id: uuid.UUID, patient_id: uuid.UUID, version: int,
    snapshot: dict[str, Any], change: str, changed_by: str, changed_at: datetime,
    *, if_absent: bool, field_sources: dict[str, Any] | None = None,
) -> None:
    stmt = pg_insert(ResourceVersion).values(
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        version=version,
        change=change,
        snapshot=snapshot,
        changed_at=changed_at,
        changed_by=changed_by,
        request_id=current_request_id(),
        field_sources=field_sources,
    )
    if if_absent:
        stmt = stmt.on_conflict_do_nothing(constraint=UNIQUE)
    uow.session.execute(stmt)


def record(
    uow: UnitOfWork, principal: Principal, resource_type: str, resource: BaseModel, change: str,
    *, previous: BaseModel | None = None, field_sources: dict[str, Any] | None = None,
) -> None:
    """Record ``resource`` (a Patient or HistoryEntry resource at its new version); ``previous``
    (the version it replaces) is kept as a baseline if no row holds it yet. A patient version also
    keeps which side (LIS or API) set each demographic field last (``field_sources``: read from
    ``lis_patient_sync`` when the caller does not have it at hand)."""
    if resource_type == "patient" and field_sources is None:
        field_sources = provenance.current_sources(uow, getattr(resource, "id"))
    if previous is not None:
        _insert(uow, resource_type, previous, "baseline", "unknown", getattr(previous, "updated_at"), if_absent=True)
    _insert(uow, resource_type, resource, change, principal.name, utcnow(), if_absent=False, field_sources=field_sources)


def record_new_patient(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, snapshot: dict[str, Any],
                       change: str, *, field_sources: dict[str, Any]) -> None:
    """``record`` of a patient's first version given as its JSON document already (``snapshot``: what
    the Patient resource's ``model_dump(mode="json")`` gives): no previous version to keep."""
    _insert_snapshot(uow, "patient", patient_id, patient_id, 1, snapshot, change, principal.name, utcnow(),
                     if_absent=False, field_sources=field_sources)


def list_versions(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, q: VersionQuery
) -> tuple[list[VersionEntry], str | None]:
    """The patient's versions and those of the history entries it holds now, newest first."""
    from shared.models import HistoryEntry  # noqa: PLC0415
    from shared.schemas.versions import VersionEntry  # noqa: PLC0415 - the LIS records versions without the API's schemas

    entries = sa.select(HistoryEntry.id).where(HistoryEntry.patient_id == patient_id)
    own = sa.and_(ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == patient_id)
    held = sa.and_(ResourceVersion.resource_type == "history", ResourceVersion.resource_id.in_(entries))
    where = {None: sa.or_(own, held), "patient": own, "history": held}[q.resource_type]
    stmt = sa.select(ResourceVersion).where(where).order_by(ResourceVersion.id.desc()).limit(q.limit + 1)
    if q.cursor:
        stmt = stmt.where(ResourceVersion.id < cursor.decode_int("v", q.cursor))
    rows = list(uow.session.scalars(stmt))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    items = [VersionEntry.model_validate(r, from_attributes=True) for r in rows]
    audit.record(uow, principal, "patient.versions.read", [patient_id], details={"returned": len(items)})
    return items, cursor.encode("v", rows[-1].id) if more else None
