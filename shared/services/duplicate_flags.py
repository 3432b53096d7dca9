"""Probable-duplicate flags: the registry's duplicate search run on every change of the matching
fields, its findings kept for review (``duplicate_flags``).

``flag_duplicates`` is called where a patient's matching fields change — the API's PATCH
(``services.patients.update_patient``) and the LIS feed (``shared.lis.patients``). The change is
kept (the caller had If-Match, or the feed is the newest writer); each candidate found becomes an
``open`` flag for the pair. The pair is unique whatever its state, so a pair reviewed as
``not_duplicate`` is never flagged again. ``lock_birth_date`` serialises the checks of patients
born on the same day, so two changes that make two records alike cannot both miss each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.ids import uuid4
from shared.models import DuplicateFlag, Patient
from shared.models.base import utcnow
from shared.services.duplicates import Duplicate, find_duplicates, lock_birth_date

# The fields the duplicate rules read (services.duplicates): a change of any of them re-runs the search.
MATCHING_FIELDS = frozenset({"name", "birth_date", "phone", "email"})


def pair(a: uuid.UUID, b: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A pair in the table's order (PostgreSQL and Python order UUIDs alike: by their bytes)."""
    return (a, b) if a < b else (b, a)


def touches_matching_fields(changed: Iterable[str]) -> bool:
    return not MATCHING_FIELDS.isdisjoint(changed)


def flag_duplicates(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, *, origin: str) -> list[Duplicate]:
    """Search probable duplicates of the patient as it is now; flag each pair not flagged before.
    Returns the newly flagged candidates (none for a pair already open or reviewed)."""
    patient = uow.session.get(Patient, patient_id, populate_existing=True)
    if patient is None or patient.status == "merged":
        return []
    lock_birth_date(uow, patient.birth_date)
    found = find_duplicates(uow, patient)
    if not found:
        return []
    now = utcnow()
    rows = [{"id": uuid4(), "patient_a": pair(patient_id, d.patient_id)[0], "patient_b": pair(patient_id, d.patient_id)[1],
             "reason": d.reason, "status": "open", "flagged_patient_id": patient_id, "origin": origin,
             "flagged_at": now, "flagged_by": principal.name} for d in found]
    inserted = {row.patient_b if row.patient_a == patient_id else row.patient_a for row in uow.session.execute(
        pg_insert(DuplicateFlag).values(rows)
        .on_conflict_do_nothing(index_elements=[DuplicateFlag.patient_a, DuplicateFlag.patient_b])
        .returning(DuplicateFlag.patient_a, DuplicateFlag.patient_b))}
    flagged = [d for d in found if d.patient_id in inserted]
    if flagged:
        audit.record(uow, principal, "patient.duplicates.flag", [patient_id, *(d.patient_id for d in flagged)],
                     details={"flagged": len(flagged), "origin": origin})
    return flagged


def flags_of(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[uuid.UUID, DuplicateFlag]:
    """Every flag involving the patient, by the other patient's id."""
    rows = uow.session.scalars(sa.select(DuplicateFlag).where(
        sa.or_(DuplicateFlag.patient_a == patient_id, DuplicateFlag.patient_b == patient_id)))
    return {(f.patient_b if f.patient_a == patient_id else f.patient_a): f for f in rows}


def close_pair(uow: UnitOfWork, principal: Principal, a: uuid.UUID, b: uuid.UUID, status: str) -> None:
    """Record the pair as reviewed (``not_duplicate`` or ``merged``), flagged or not before (a pair
    never flagged gets reason ``manual``: no search found it)."""
    low, high = pair(a, b)
    now = utcnow()
    insert = pg_insert(DuplicateFlag).values(
        id=uuid4(), patient_a=low, patient_b=high, reason="manual", status=status, flagged_patient_id=a,
        origin="review", flagged_at=now, flagged_by=principal.name, reviewed_at=now, reviewed_by=principal.name)
    uow.session.execute(insert.on_conflict_do_update(
        index_elements=[DuplicateFlag.patient_a, DuplicateFlag.patient_b],
        set_={"status": status, "reviewed_at": now, "reviewed_by": principal.name}))


def carry_over(uow: UnitOfWork, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID) -> int:
    """On a merge of ``source_id`` into ``target_id``: the source's other open flags (with X) are
    closed as ``merged`` and become open flags of the target with X (unless that pair has a row
    already: reviewed pairs stay reviewed). Returns how many were carried over."""
    others = {other: f for other, f in flags_of(uow, source_id).items() if f.status == "open" and other != target_id}
    if not others:
        return 0
    now = utcnow()
    rows = [{"id": uuid4(), "patient_a": pair(target_id, other)[0], "patient_b": pair(target_id, other)[1],
             "reason": f.reason, "status": "open", "flagged_patient_id": target_id, "origin": f.origin,
             "flagged_at": now, "flagged_by": principal.name} for other, f in others.items()]
    uow.session.execute(pg_insert(DuplicateFlag).values(rows).on_conflict_do_nothing(
        index_elements=[DuplicateFlag.patient_a, DuplicateFlag.patient_b]))
    uow.session.execute(sa.update(DuplicateFlag).where(DuplicateFlag.id.in_([f.id for f in others.values()]))
                        .values(status="merged", reviewed_at=now, reviewed_by=principal.name))
    return len(others)


def count_open(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(sa.select(sa.func.count()).select_from(DuplicateFlag).where(DuplicateFlag.status == "open")) or 0)


def reviewed_not_duplicate(uow: UnitOfWork, patient_id: uuid.UUID) -> set[uuid.UUID]:
    """The patients reviewed as not being this one."""
    return {other for other, f in flags_of(uow, patient_id).items() if f.status == "not_duplicate"}
