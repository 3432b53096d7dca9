"""The ``data-quality`` job and the per-patient re-check of the default worker.

A patient is flagged with reason codes when its stored data would not pass the API's own rules
(``shared.schemas.patients``: birth date present, not in the future, not before 1890; phone in
E.164; e-mail valid) or when it has probable duplicates (``shared.services.duplicates``, the one
implementation; pairs reviewed as not duplicates are left out). A completed pass also counts
the probable-duplicate flags waiting for review (``open_duplicate_flags``). The report (``data_quality_issues``) holds patient ids and reason codes only.

Checking a patient rewrites its report rows: current reasons are upserted (``first_seen_at``
kept), reasons that no longer apply are deleted; merged or missing patients lose their rows. The
nightly job walks every patient in id order, one batch per transaction, saving the last id as its
cursor in the same transaction: a run that reaches its time budget stops, and the next run
resumes after that id. Each batch is audited (a system read of patient data).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import SYSTEM_JOBS
from shared.db import UnitOfWork, unit_of_work
from shared.jobs.context import JobContext, JobResult
from shared.models import Patient
from shared.models.base import utcnow
from shared.models import DataQualityIssue
from shared.schemas.patients import EARLIEST_BIRTH_DATE, Email, Phone
from shared.services.duplicate_flags import count_open, reviewed_not_duplicate
from shared.services.duplicates import find_duplicates

BATCH_SIZE = 200

_phone = TypeAdapter(Phone)
_email = TypeAdapter(Email)


def _valid(adapter: TypeAdapter, value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def field_problems(birth_date: date | None, phone: str | None, email: str | None, today: date) -> list[str]:
    """Reason codes for one patient's stored fields (pure)."""
    reasons = []
    if birth_date is None:
        reasons.append("birth_date_missing")
    elif birth_date > today:
        reasons.append("birth_date_in_future")
    elif birth_date < EARLIEST_BIRTH_DATE:
        reasons.append("birth_date_before_1890")
    if phone is not None and not _valid(_phone, phone):
        reasons.append("phone_invalid")
    if email is not None and not _valid(_email, email):
        reasons.append("email_invalid")
    return reasons


def check_patients(uow: UnitOfWork, patient_ids: Sequence[uuid.UUID], *, today: date | None = None) -> dict[str, int]:
    """Re-check these patients and rewrite their report rows. Returns counts (checked, flagged)."""
    today = today or utcnow().date()
    ids = list(dict.fromkeys(patient_ids))
    patients = uow.session.scalars(
        sa.select(Patient).where(Patient.id.in_(ids), Patient.status != "merged").order_by(Patient.id)
    ).all()
    now = utcnow()
    found: dict[uuid.UUID, dict[str, list[uuid.UUID]]] = {}
    for p in patients:
        reasons: dict[str, list[uuid.UUID]] = {r: [] for r in field_problems(p.birth_date, p.phone, p.email, today)}
        reviewed = reviewed_not_duplicate(uow, p.id)
        duplicates = {d.patient_id for d in find_duplicates(uow, p)} - reviewed
        if duplicates:
            reasons["probable_duplicate"] = sorted(duplicates)
        found[p.id] = reasons
    rows = [{"patient_id": pid, "reason": reason, "related_ids": related, "first_seen_at": now, "last_seen_at": now}
            for pid, reasons in found.items() for reason, related in reasons.items()]
    if rows:
        insert = pg_insert(DataQualityIssue).values(rows)
        uow.session.execute(insert.on_conflict_do_update(
            index_elements=[DataQualityIssue.patient_id, DataQualityIssue.reason],
            set_={"related_ids": insert.excluded.related_ids, "last_seen_at": insert.excluded.last_seen_at},
        ))
    # Reasons that no longer apply (and every row of a merged or unknown patient) go.
    stale = sa.delete(DataQualityIssue).where(DataQualityIssue.patient_id.in_(ids))
    if rows:
        current = [(r["patient_id"], r["reason"]) for r in rows]
        stale = stale.where(sa.tuple_(DataQualityIssue.patient_id, DataQualityIssue.reason).not_in(current))
    uow.session.execute(stale)
    if patients:
        audit.record(uow, SYSTEM_JOBS, "jobs.data_quality.check", [p.id for p in patients],
                     details={"checked": len(patients), "flagged": sum(1 for r in found.values() if r)})
    return {"checked": len(patients), "flagged": sum(1 for r in found.values() if r)}


def run(ctx: JobContext) -> JobResult:
    """Walk every patient in id order from the saved cursor, one batch per transaction."""
    after = _cursor_id(ctx.cursor)
    while not ctx.out_of_time():
        with unit_of_work() as uow:
            stmt = sa.select(Patient.id).order_by(Patient.id).limit(BATCH_SIZE)
            if after is not None:
                stmt = stmt.where(Patient.id > after)
            ids = list(uow.session.scalars(stmt))
            if ids:
                ctx.merge_counts(check_patients(uow, ids))
                ctx.add("batches")
            last = ids[-1] if len(ids) == BATCH_SIZE else None
            ctx.save_cursor(uow, {"after": str(last)} if last else None)
        if last is None:
            ctx.add("passes_completed")
            with unit_of_work() as uow:
                ctx.add("open_duplicate_flags", count_open(uow))
            return JobResult(complete=True)
        after = last
    return JobResult(complete=False)


def _cursor_id(cursor: dict | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str((cursor or {})["after"]))
    except (KeyError, ValueError):
        return None
