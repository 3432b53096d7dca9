"""Medical history: add, list, read and change entries (JSON merge patch under If-Match).

Entries are never deleted (``entered-in-error`` retracts one). Adding locks the patient
``FOR KEY SHARE`` before checking it is not merged, so an entry cannot land on a patient that a
concurrent merge is retiring (the merge holds ``FOR UPDATE``).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, PreconditionFailed
from shared.events import catalog
from shared.events.outbox import emit
from shared.ids import uuid4
from shared.models import HistoryEntry, Patient
from shared.models.base import utcnow
from shared.schemas.history import HistoryEntry as EntryResource
from shared.schemas.history import HistoryEntryCreate, HistoryQuery
from shared.services import cursor, versions
from shared.services.merge_patch import apply_merge_patch, changed_members, validate_patched

CURSOR_KIND = "h"
WRITABLE = ("category", "code", "status", "onset", "abatement", "notes")


def to_entry(entry: HistoryEntry) -> EntryResource:
    code = None
    if entry.code is not None or entry.code_system is not None:
        code = {"system": entry.code_system, "code": entry.code, "display": entry.code_display}
    return EntryResource.model_validate({
        "id": entry.id, "patient_id": entry.patient_id, "category": entry.category, "code": code,
        "status": entry.status, "onset": entry.onset, "abatement": entry.abatement, "notes": entry.notes,
        "recorded_at": entry.recorded_at, "recorded_by": entry.recorded_by, "version": entry.version,
        "updated_at": entry.updated_at,
    })


def _columns(data: HistoryEntryCreate) -> dict[str, Any]:
    return {
        "category": data.category,
        "code_system": data.code.system if data.code else None,
        "code": data.code.code if data.code else None,
        "code_display": data.code.display if data.code else None,
        "status": data.status,
        "onset": data.onset,
        "abatement": data.abatement,
        "notes": data.notes,
    }


def _patient_for_write(uow: UnitOfWork, patient_id: uuid.UUID) -> Patient:
    patient = uow.session.scalar(
        sa.select(Patient).where(Patient.id == patient_id).with_for_update(key_share=True, read=True)
    )
    if patient is None:
        raise NotFound("No patient with this id")
    if patient.status == "merged":
        raise Conflict("This patient was merged into another; record history on the surviving patient",
                       merged_into=str(patient.merged_into))
    return patient


def _require_patient(uow: UnitOfWork, patient_id: uuid.UUID) -> None:
    if uow.session.scalar(sa.select(Patient.id).where(Patient.id == patient_id)) is None:
        raise NotFound("No patient with this id")


def add_entry(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, data: HistoryEntryCreate) -> HistoryEntry:
    _patient_for_write(uow, patient_id)
    now = utcnow()
    entry = HistoryEntry(id=uuid4(), patient_id=patient_id, **_columns(data), recorded_at=now,
                         recorded_by=principal.name, version=1, created_at=now, updated_at=now)
    uow.session.add(entry)
    uow.flush()
    versions.record(uow, principal, "history", to_entry(entry), "create")
    audit.record(uow, principal, "history.create", [patient_id], details={"entry_id": str(entry.id)})
    emit(uow, catalog.HISTORY_ADDED, patient_id,
         catalog.HistoryEntryChanged(patient_id=patient_id, entry_id=entry.id, version=1))
    return entry


def _load_entry(uow: UnitOfWork, patient_id: uuid.UUID, entry_id: uuid.UUID, *, fresh: bool = False) -> HistoryEntry:
    stmt = sa.select(HistoryEntry).where(HistoryEntry.id == entry_id, HistoryEntry.patient_id == patient_id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    entry = uow.session.scalar(stmt)
    if entry is None:
        raise NotFound("No history entry with this id for this patient")
    return entry


def get_entry(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, entry_id: uuid.UUID) -> HistoryEntry:
    entry = _load_entry(uow, patient_id, entry_id)
    audit.record(uow, principal, "history.read", [patient_id], details={"entry_id": str(entry_id)})
    return entry


def list_entries(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, q: HistoryQuery
) -> tuple[list[HistoryEntry], str | None]:
    """Newest first; page order (recorded_at, id) descending."""
    _require_patient(uow, patient_id)
    stmt = sa.select(HistoryEntry).where(HistoryEntry.patient_id == patient_id)
    if q.category is not None:
        stmt = stmt.where(HistoryEntry.category == q.category)
    if q.status is not None:
        stmt = stmt.where(HistoryEntry.status == q.status)
    rows, next_cursor = cursor.newest_first_page(uow, stmt, HistoryEntry, HistoryEntry.recorded_at, CURSOR_KIND,
                                                 q.cursor, q.limit)
    audit.record(uow, principal, "history.read", [patient_id], details={"returned": len(rows)})
    return rows, next_cursor


def update_entry(
    uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, entry_id: uuid.UUID, patch: dict[str, Any],
    *, expected_version: int,
) -> HistoryEntry:
    entry = _load_entry(uow, patient_id, entry_id)
    if entry.version != expected_version:
        raise PreconditionFailed("The entry changed since you read it: GET it again and reapply your change")
    before = to_entry(entry)
    doc = before.model_dump(mode="json", include=set(WRITABLE))
    state = validate_patched(HistoryEntryCreate, apply_merge_patch(doc, patch))
    after = state.model_dump(mode="json")
    changed = changed_members(doc, after)
    if not changed:
        audit.record(uow, principal, "history.update", [patient_id], details={"entry_id": str(entry_id), "changed": []})
        return entry
    updated = uow.session.execute(
        sa.update(HistoryEntry)
        .where(HistoryEntry.id == entry_id, HistoryEntry.patient_id == patient_id, HistoryEntry.version == expected_version)
        .values(**_columns(state), version=expected_version + 1, updated_at=utcnow())
        .returning(HistoryEntry.id)
        .execution_options(synchronize_session=False)
    ).first()
    if updated is None:
        raise PreconditionFailed("The entry changed since you read it: GET it again and reapply your change")
    entry = _load_entry(uow, patient_id, entry_id, fresh=True)
    versions.record(uow, principal, "history", to_entry(entry), "update", previous=before)
    audit.record(uow, principal, "history.update", [patient_id], details={"entry_id": str(entry_id), "changed": changed})
    emit(uow, catalog.HISTORY_CHANGED, patient_id,
         catalog.HistoryEntryChanged(patient_id=patient_id, entry_id=entry_id, version=entry.version))
    return entry
