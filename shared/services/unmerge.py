"""Undo a merge made in error: the former source becomes a patient of its own again.

``unmerge_patient`` locks the source and the patient it was merged into (in id order, as a merge
does), and restores the source from its last version before the merge (``resource_versions``):
its demographics and status, and its identifiers — those the target still holds go back, those
no longer held by anyone are claimed again, those another patient holds now stay there (counted
as ``identifiers_kept``). Records merged into the source before its own merge (and flattened to
the target then) point at the source again. Orders, results and history entries the merge moved
stay with the target: they were charted there since, and each can be corrected on its own.

The ``patient_merges`` row goes (a new merge of the pair is possible again; the audit entry keeps
what it said), the pair is recorded as ``not_duplicate`` (never flagged again), both patients get
a version (``unmerge`` / ``unmerge-target``), one audit entry, and ``patient.unmerged`` is emitted
(subject: the former source) with ``patient.updated`` for the target.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound
from shared.events import catalog
from shared.events.outbox import emit
from shared.models import Patient, PatientIdentifier, PatientMerge, ResourceVersion
from shared.models.base import utcnow
from shared.normalize import fold_key
from shared.services import versions
from shared.services.duplicate_flags import close_pair
from shared.services.name_index import index_names
from shared.services.patients import claim_identifiers, load_patient, to_resource


@dataclass(frozen=True)
class UnmergeResult:
    source: Patient
    target: Patient
    restored: dict[str, int]  # identifiers, identifiers_kept, records


def _locked_pair(uow: UnitOfWork, source_id: uuid.UUID) -> tuple[Patient, Patient]:
    target_id = uow.session.scalar(sa.select(Patient.merged_into).where(Patient.id == source_id))
    exists = uow.session.scalar(sa.select(Patient.id).where(Patient.id == source_id))
    if exists is None:
        raise NotFound("No patient with this id")
    if target_id is None:
        raise Conflict("This patient is not merged")
    rows = {p.id: p for p in uow.session.scalars(
        sa.select(Patient).where(Patient.id.in_([source_id, target_id])).order_by(Patient.id)
        .with_for_update().execution_options(populate_existing=True))}
    if rows[source_id].merged_into != target_id:
        raise Conflict("This patient's merge changed while it was being undone; try again")
    return rows[source_id], rows[target_id]


def _before_merge(uow: UnitOfWork, source_id: uuid.UUID) -> dict[str, Any]:
    """The source's snapshot just before its (last) merge."""
    merged = uow.session.scalar(
        sa.select(ResourceVersion.version).where(
            ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == source_id,
            ResourceVersion.change == "merge").order_by(ResourceVersion.version.desc()).limit(1))
    snapshot = None if merged is None else uow.session.scalar(
        sa.select(ResourceVersion.snapshot).where(
            ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == source_id,
            ResourceVersion.version == merged - 1))
    if snapshot is None:
        raise Conflict("No version of this patient from before its merge is kept; it cannot be unmerged")
    return snapshot


def _columns(snapshot: dict[str, Any]) -> dict[str, Any]:
    name = snapshot["name"]
    given = list(name.get("given") or [])
    return {
        "status": snapshot["status"], "merged_into": None,
        "family": name["family"], "given": given, "prefix": list(name.get("prefix") or []),
        "suffix": list(name.get("suffix") or []), "family_norm": fold_key(name["family"]),
        "first_given_norm": fold_key(given[0]) if given else "",
        "birth_date": date.fromisoformat(snapshot["birth_date"]) if snapshot.get("birth_date") else None,
        "sex": snapshot["sex"], "phone": snapshot.get("phone"), "email": snapshot.get("email"),
        "address": snapshot.get("address"), "preferred_language": snapshot["preferred_language"],
        "timezone": snapshot["timezone"], "comm_email": snapshot["communication"]["email"],
        "comm_sms": snapshot["communication"]["sms"],
    }


def _restore_identifiers(uow: UnitOfWork, source_id: uuid.UUID, target_id: uuid.UUID,
                         identifiers: list[dict[str, Any]]) -> tuple[int, int]:
    """(restored, kept by another patient)."""
    keys = [(i["system"], i["value"]) for i in identifiers]
    if not keys:
        return 0, 0
    held = {(r.system, r.value): r.patient_id for r in uow.session.execute(
        sa.select(PatientIdentifier.system, PatientIdentifier.value, PatientIdentifier.patient_id)
        .where(sa.tuple_(PatientIdentifier.system, PatientIdentifier.value).in_(keys)).with_for_update())}
    back = [k for k in keys if held.get(k) == target_id]
    if back:
        uow.session.execute(
            sa.update(PatientIdentifier).where(PatientIdentifier.patient_id == target_id,
                                               sa.tuple_(PatientIdentifier.system, PatientIdentifier.value).in_(back))
            .values(patient_id=source_id).execution_options(synchronize_session=False))
    gone = [(i["system"], i["value"], i.get("type")) for i in identifiers if (i["system"], i["value"]) not in held]
    claim_identifiers(uow, source_id, gone)
    return len(back) + len(gone), len(keys) - len(back) - len(gone)


def _unflatten(uow: UnitOfWork, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID) -> list[uuid.UUID]:
    """Records merged into the source before its merge (flattened to the target then) point at it again."""
    ids = list(uow.session.scalars(
        sa.select(Patient.id).join(PatientMerge, PatientMerge.source_id == Patient.id)
        .where(PatientMerge.target_id == source_id, Patient.merged_into == target_id).order_by(Patient.id)
        .with_for_update(of=Patient)))
    if not ids:
        return []
    before = {i: to_resource(load_patient(uow, i)) for i in ids}
    uow.session.execute(sa.update(Patient).where(Patient.id.in_(ids))
                        .values(merged_into=source_id, version=Patient.version + 1, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
    for i in ids:
        versions.record(uow, principal, "patient", to_resource(load_patient(uow, i, fresh=True)), "unmerge-flatten",
                        previous=before[i])
    return ids


def unmerge_patient(uow: UnitOfWork, principal: Principal, source_id: uuid.UUID) -> UnmergeResult:
    source, target = _locked_pair(uow, source_id)
    target_id = target.id
    snapshot = _before_merge(uow, source_id)
    source_before, target_before = to_resource(load_patient(uow, source_id)), to_resource(load_patient(uow, target_id))
    now = utcnow()
    columns = _columns(snapshot)
    uow.session.execute(sa.update(Patient).where(Patient.id == source_id)
                        .values(**columns, version=Patient.version + 1, updated_at=now)
                        .execution_options(synchronize_session=False))
    restored, kept = _restore_identifiers(uow, source_id, target_id, snapshot["identifiers"])
    index_names(uow, source_id, columns["family"], columns["given"])
    children = _unflatten(uow, principal, source_id, target_id)
    uow.session.execute(sa.update(Patient).where(Patient.id == target_id)
                        .values(version=Patient.version + 1, updated_at=now).execution_options(synchronize_session=False))
    record = uow.session.get(PatientMerge, source_id)
    merge_details = {"merged_at": record.merged_at.isoformat(), "merged_by": record.merged_by, "moved": record.moved} if record else {}
    if record is not None:
        uow.session.delete(record)
    close_pair(uow, principal, source_id, target_id, "not_duplicate")
    source, target = load_patient(uow, source_id, fresh=True), load_patient(uow, target_id, fresh=True)
    versions.record(uow, principal, "patient", to_resource(source), "unmerge", previous=source_before)
    versions.record(uow, principal, "patient", to_resource(target), "unmerge-target", previous=target_before)
    counts = {"identifiers": restored, "identifiers_kept": kept, "records": len(children)}
    audit.record(uow, principal, "patient.unmerge", [source_id, target_id, *children],
                 details={"restored": counts, "merge": merge_details})
    emit(uow, catalog.PATIENT_UNMERGED, source_id,
         catalog.PatientUnmerged(patient_id=source_id, target_id=target_id, version=source.version, restored=counts))
    emit(uow, catalog.PATIENT_UPDATED, target_id,
         catalog.PatientUpdated(patient_id=target_id, version=target.version, changed=["identifiers"]))
    return UnmergeResult(source, target, counts)
