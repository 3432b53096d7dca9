"""Merge a duplicate (source) into the surviving patient (target).

``merge_patients`` locks both patients ``FOR UPDATE`` in id order (two merges touching the same
pair cannot deadlock, and an insert of an order, result or history entry for the source waits
for the merge), then moves identifiers, history entries, orders and results to the target,
marks the source ``merged`` with ``merged_into`` and records the merge in ``patient_merges``
(primary key: the source). Records merged into the source before now point at the target, in
the same transaction (``_flatten_chain``): every merge is one hop, which the deferred trigger
``patients_merge_one_hop`` (migration 0015) enforces, so a cycle cannot exist. The pair's
duplicate flag is closed as ``merged``, and the source's other open flags become the target's.
Repeating a merge into the same target answers with the first
merge's result; into another target is a 409. The HTTP route and the LIS A40 handler both call it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import catalog
from shared.events.outbox import emit
from shared.models import HistoryEntry, LabOrder, LabResult, Patient, PatientIdentifier, PatientMerge
from shared.models.base import utcnow
from shared.services import versions
from shared.services.duplicate_flags import carry_over, close_pair
from shared.services.history import to_entry
from shared.services.patients import load_patient, to_resource

MAX_CHAIN = 20


@dataclass(frozen=True)
class MergeResult:
    source: Patient
    target: Patient
    moved: dict[str, int]  # identifiers, history, orders, results
    merged_at: datetime
    already_merged: bool  # True when this call found the merge done (nothing moved, no event)


def _target_error(message: str, code: str) -> ValidationFailed:
    return ValidationFailed([{"in": "body", "field": "target_id", "message": message, "code": code}])


def _lock_pair(uow: UnitOfWork, source_id: uuid.UUID, target_id: uuid.UUID) -> tuple[Patient, Patient]:
    rows = uow.session.scalars(
        sa.select(Patient).where(Patient.id.in_([source_id, target_id])).order_by(Patient.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    found = {p.id: p for p in rows}
    if source_id not in found:
        raise NotFound("No patient with this id")
    if target_id not in found:
        raise _target_error("no patient with this id", "not_found")
    return found[source_id], found[target_id]


def _repeat(uow: UnitOfWork, principal: Principal, source: Patient, target_id: uuid.UUID) -> MergeResult:
    if source.merged_into != target_id:
        raise Conflict("This patient was already merged into another patient", merged_into=str(source.merged_into))
    record = uow.session.get(PatientMerge, source.id)
    moved = dict(record.moved) if record else {}
    merged_at = record.merged_at if record else source.updated_at
    audit.record(uow, principal, "patient.merge", [source.id, target_id], details={"repeat": True})
    return MergeResult(load_patient(uow, source.id), load_patient(uow, target_id), moved, merged_at, True)


def _move_history(uow: UnitOfWork, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID) -> int:
    entries = uow.session.scalars(
        sa.select(HistoryEntry).where(HistoryEntry.patient_id == source_id).order_by(HistoryEntry.id).with_for_update()
    ).all()
    before = {e.id: to_entry(e) for e in entries}
    if not entries:
        return 0
    uow.session.execute(
        sa.update(HistoryEntry).where(HistoryEntry.patient_id == source_id)
        .values(patient_id=target_id, version=HistoryEntry.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    moved = uow.session.scalars(
        sa.select(HistoryEntry).where(HistoryEntry.id.in_(list(before))).execution_options(populate_existing=True)
    ).all()
    for entry in moved:
        versions.record(uow, principal, "history", to_entry(entry), "move", previous=before[entry.id])
    return len(moved)


def _move(uow: UnitOfWork, model: Any, source_id: uuid.UUID, target_id: uuid.UUID, **extra: Any) -> int:
    result = uow.session.execute(
        sa.update(model).where(model.patient_id == source_id).values(patient_id=target_id, **extra)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def _rekey_clashing_observations(uow: UnitOfWork, source_id: uuid.UUID, target_id: uuid.UUID) -> None:
    """Patient-level observations (results without an order) are unique per patient and key; one the
    target holds under the same key too (the same observation reached both records) keeps both
    rows: the source's gets its own id appended to its key. Both patients are locked."""
    source, target = LabResult.__table__.alias("source"), LabResult.__table__.alias("target")
    clash = sa.select(target.c.id).where(target.c.patient_id == target_id, target.c.order_id.is_(None),
                                          target.c.result_key == source.c.result_key).exists()
    uow.session.execute(
        sa.update(source).where(source.c.patient_id == source_id, source.c.order_id.is_(None), clash)
        .values(result_key=sa.func.left(source.c.result_key, 360) + "~" + sa.cast(source.c.id, sa.String))
    )


def merge_patients(uow: UnitOfWork, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID) -> MergeResult:
    if source_id == target_id:
        raise _target_error("a patient cannot be merged into itself", "merge_into_self")
    source, target = _lock_pair(uow, source_id, target_id)
    if source.status == "merged":
        return _repeat(uow, principal, source, target_id)
    if target.status == "merged":
        raise Conflict("The target patient was merged into another patient; merge into that one",
                       target_merged_into=str(target.merged_into))
    if target.status != "active":
        raise Conflict("The target patient is inactive; reactivate it before merging into it")
    source_before, target_before = to_resource(load_patient(uow, source_id)), to_resource(load_patient(uow, target_id))
    now = utcnow()
    _rekey_clashing_observations(uow, source_id, target_id)
    moved = {
        "identifiers": _move(uow, PatientIdentifier, source_id, target_id),
        "history": _move_history(uow, principal, source_id, target_id),
        "orders": _move(uow, LabOrder, source_id, target_id, updated_at=now),
        "results": _move(uow, LabResult, source_id, target_id, updated_at=now),
    }
    flattened = _flatten_chain(uow, principal, source_id, target_id, now)
    uow.session.execute(
        sa.update(Patient).where(Patient.id == source_id)
        .values(status="merged", merged_into=target_id, version=Patient.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    uow.session.execute(
        sa.update(Patient).where(Patient.id == target_id).values(version=Patient.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    uow.session.add(PatientMerge(source_id=source_id, target_id=target_id, merged_at=now, merged_by=principal.name, moved=moved))
    source, target = load_patient(uow, source_id, fresh=True), load_patient(uow, target_id, fresh=True)
    versions.record(uow, principal, "patient", to_resource(source), "merge", previous=source_before)
    versions.record(uow, principal, "patient", to_resource(target), "merge-target", previous=target_before)
    close_pair(uow, principal, source_id, target_id, "merged")
    carry_over(uow, principal, source_id, target_id)
    audit.record(uow, principal, "patient.merge", [source_id, target_id, *flattened],
                 details={"moved": moved, "flattened": len(flattened)})
    emit(uow, catalog.PATIENT_MERGED, source_id, catalog.PatientMerged(patient_id=source_id, target_id=target_id, moved=moved))
    emit(uow, catalog.PATIENT_UPDATED, target_id,
         catalog.PatientUpdated(patient_id=target_id, version=target.version, changed=["identifiers"]))
    return MergeResult(source, target, moved, now, False)


def _flatten_chain(uow: UnitOfWork, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID,
                   now: datetime) -> list[uuid.UUID]:
    """Every record merged into the source earlier now points at the target, so that a read is one
    hop (the deferred trigger ``patients_merge_one_hop`` refuses the commit otherwise). Each is
    versioned (``merge-flatten``). Returns their ids."""
    children = uow.session.scalars(
        sa.select(Patient).where(Patient.merged_into == source_id).order_by(Patient.id).with_for_update()
        .options(selectinload(Patient.identifiers)).execution_options(populate_existing=True)
    ).all()
    if not children:
        return []
    before = {child.id: to_resource(child) for child in children}
    uow.session.execute(
        sa.update(Patient).where(Patient.id.in_(list(before)))
        .values(merged_into=target_id, version=Patient.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    for child_id, previous in before.items():
        versions.record(uow, principal, "patient", to_resource(load_patient(uow, child_id, fresh=True)), "merge-flatten",
                        previous=previous)
    return list(before)


def resolve_merged(uow: UnitOfWork, patient_id: uuid.UUID) -> uuid.UUID:
    """Follow ``merged_into`` to the surviving patient (for feeds that hold an old patient id)."""
    current = patient_id
    for _ in range(MAX_CHAIN):
        merged_into = uow.session.scalar(sa.select(Patient.merged_into).where(Patient.id == current))
        if merged_into is None:
            return current
        current = merged_into
    raise Conflict("The merge chain of this patient is too long")
