"""data-quality against real PostgreSQL: reasons, re-checks, duplicates, and resuming from the cursor."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.jobs import data_quality
from shared.jobs.runner import run_job
from shared.models import AuditEntry, DuplicateFlag, Patient
from shared.models.job_runs import JobState
from shared.models.jobs import DataQualityIssue
from shared.services.duplicate_flags import close_pair
from tests.support.jobs_data import make_patient, unique_minute


def _issues(*patient_ids: uuid.UUID) -> dict[uuid.UUID, dict[str, list[uuid.UUID]]]:
    with unit_of_work() as uow:
        rows = uow.session.scalars(sa.select(DataQualityIssue).where(DataQualityIssue.patient_id.in_(patient_ids))).all()
    found: dict[uuid.UUID, dict[str, list[uuid.UUID]]] = {pid: {} for pid in patient_ids}
    for r in rows:
        found[r.patient_id][r.reason] = list(r.related_ids)
    return found


def test_each_kind_of_bad_data_gets_its_reason(database_url):
    today = date.today()
    with unit_of_work() as uow:
        good = make_patient(uow, phone="+14155550123", email="ok@example.org")
        missing = make_patient(uow, birth_date=None)
        future = make_patient(uow, birth_date=today + timedelta(days=3))
        ancient = make_patient(uow, birth_date=date(1889, 12, 31))
        contact = make_patient(uow, phone="0044 20 7946 0000", email="not-an-email")
        data_quality.check_patients(uow, [good, missing, future, ancient, contact])
    assert _issues(good, missing, future, ancient, contact) == {
        good: {},
        missing: {"birth_date_missing": []},
        future: {"birth_date_in_future": []},
        ancient: {"birth_date_before_1890": []},
        contact: {"phone_invalid": [], "email_invalid": []},
    }


def test_probable_duplicates_name_each_other(database_url):
    family, given = f"Dup{uuid.uuid4().hex[:10]}", "Ana"
    with unit_of_work() as uow:
        a = make_patient(uow, family=family, given=given, birth_date=date(1970, 1, 2))
        b = make_patient(uow, family=family.upper(), given=given, birth_date=date(1970, 1, 2))
        other_day = make_patient(uow, family=family, given=given, birth_date=date(1970, 1, 3))
        data_quality.check_patients(uow, [a, b, other_day])
    assert _issues(a, b, other_day) == {a: {"probable_duplicate": [b]}, b: {"probable_duplicate": [a]}, other_day: {}}


def test_a_pair_reviewed_as_not_duplicates_leaves_the_report(database_url):
    family = f"Dup{uuid.uuid4().hex[:10]}"
    with unit_of_work() as uow:
        a = make_patient(uow, family=family, given="Bo", birth_date=date(1971, 2, 3))
        b = make_patient(uow, family=family, given="Bo", birth_date=date(1971, 2, 3))
        c = make_patient(uow, family=family, given="Bo", birth_date=date(1971, 2, 3))
        close_pair(uow, SYSTEM_CLI, a, b, "not_duplicate")
        data_quality.check_patients(uow, [a, b, c])
    assert _issues(a, b, c) == {a: {"probable_duplicate": [c]}, b: {"probable_duplicate": [c]},
                                c: {"probable_duplicate": sorted([a, b])}}


def test_a_recheck_drops_reasons_that_no_longer_apply_and_keeps_first_seen(database_url):
    with unit_of_work() as uow:
        pid = make_patient(uow, birth_date=None, phone="12345")
        data_quality.check_patients(uow, [pid])
    with unit_of_work() as uow:
        first_seen = uow.session.get(DataQualityIssue, (pid, "birth_date_missing")).first_seen_at
        uow.session.execute(sa.update(Patient).where(Patient.id == pid).values(phone="+34911234567"))
        data_quality.check_patients(uow, [pid])
    assert _issues(pid) == {pid: {"birth_date_missing": []}}
    with unit_of_work() as uow:
        row = uow.session.get(DataQualityIssue, (pid, "birth_date_missing"))
        assert row.first_seen_at == first_seen and row.last_seen_at >= first_seen


def test_a_merged_patient_leaves_the_report(database_url):
    with unit_of_work() as uow:
        target = make_patient(uow)
        source = make_patient(uow, birth_date=None)
        data_quality.check_patients(uow, [source])
    assert _issues(source) == {source: {"birth_date_missing": []}}
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Patient).where(Patient.id == source).values(status="merged", merged_into=target))
        data_quality.check_patients(uow, [source, target])
    assert _issues(source, target) == {source: {}, target: {}}


def test_checking_patients_is_audited_as_a_system_read(database_url):
    with unit_of_work() as uow:
        pid = make_patient(uow, email="bad@")
        data_quality.check_patients(uow, [pid])
    with unit_of_work() as uow:
        entries = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.patient_ids.contains([pid]))).all()
    assert [(e.principal, e.action) for e in entries] == [("system:jobs", "jobs.data_quality.check")]


def test_a_run_out_of_budget_resumes_after_the_last_patient_it_checked(database_url, monkeypatch):
    # The walk is in id order: two patients that sort first, one that sorts last.
    suffix = uuid.uuid4().hex[:12]
    with unit_of_work() as uow:
        first = make_patient(uow, id=uuid.UUID(f"00000000-0000-4000-8000-{suffix}"), birth_date=None)
        second = make_patient(uow, id=uuid.UUID(f"00000000-0000-4000-8001-{suffix}"), birth_date=None)
        last = make_patient(uow, id=uuid.UUID(f"ffffffff-ffff-4fff-bfff-{suffix}"), birth_date=None)
        # Start a fresh pass (the cursor is this job's own state).
        uow.session.execute(sa.delete(JobState).where(JobState.job == "data-quality"))

    # A clock that moves one second per reading, with a 1.5 s budget: exactly one batch fits.
    ticks = itertools.count()
    monkeypatch.setattr(data_quality, "BATCH_SIZE", 2)
    slot = unique_minute()
    stopped = run_job("data-quality", slot=slot, trigger="schedule", budget_seconds=1.5, clock=lambda: float(next(ticks)))
    assert (stopped.status, stopped.counts["checked"], stopped.counts["batches"]) == ("incomplete", 2, 1)
    assert _issues(first, second, last) == {first: {"birth_date_missing": []}, second: {"birth_date_missing": []}, last: {}}
    with unit_of_work() as uow:
        assert uow.session.get(JobState, "data-quality").cursor == {"after": str(second)}
        # Both checked patients get a new problem: a run that started over would see it.
        uow.session.execute(sa.update(Patient).where(Patient.id.in_([first, second])).values(phone="bad"))
        remaining = uow.session.scalar(sa.select(sa.func.count()).select_from(Patient)
                                       .where(Patient.id > second, Patient.status != "merged"))

    monkeypatch.setattr(data_quality, "BATCH_SIZE", 500)
    resumed = run_job("data-quality", slot=slot + timedelta(days=1), trigger="schedule", budget_seconds=600)
    assert resumed.status == "succeeded"
    assert resumed.counts["checked"] == remaining and resumed.counts["passes_completed"] == 1
    with unit_of_work() as uow:  # a completed pass counts the duplicate flags waiting for review
        open_flags = uow.session.scalar(sa.select(sa.func.count()).select_from(DuplicateFlag).where(DuplicateFlag.status == "open"))
    assert resumed.counts["open_duplicate_flags"] == open_flags
    assert _issues(first, second, last) == {
        first: {"birth_date_missing": []}, second: {"birth_date_missing": []}, last: {"birth_date_missing": []}}
    with unit_of_work() as uow:
        assert uow.session.get(JobState, "data-quality").cursor is None  # the next run starts a new pass

    run_job("data-quality", slot=slot + timedelta(days=2), trigger="schedule", budget_seconds=600)
    assert _issues(first)[first] == {"birth_date_missing": [], "phone_invalid": []}
