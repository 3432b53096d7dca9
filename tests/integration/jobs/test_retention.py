"""retention against real PostgreSQL: what goes, what stays (audit rows above all), and resuming."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import timedelta

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.jobs import retention
from shared.jobs.runner import run_job
from shared.models import AuditEntry, LisMessage, ProcessedEvent
from shared.models.base import utcnow
from shared.models.job_runs import JobRun, JobState
from shared.settings import get_settings
from tests.support.jobs_data import make_patient, unique_minute


def _lis_message(uow, patient_id, received_at) -> uuid.UUID:
    raw = f"MSH|^~\\&|LAB|HOSP|||20200101||ADT^A08|{uuid.uuid4().hex[:10]}|P|2.5\r".encode()
    mid = uuid.uuid4()
    uow.session.execute(sa.insert(LisMessage).values(
        id=mid, received_at=received_at, processed_at=received_at, transport="cloudevent", ce_source="/tests/lis",
        ce_id=str(uuid.uuid4()), part=0, parts=1, content_format="hl7v2", raw=raw,
        raw_sha256=hashlib.sha256(raw).hexdigest(), raw_size=len(raw), control_id=uuid.uuid4().hex[:10],
        message_type="ADT^A08", status="processed", warnings=[], patient_id=patient_id, delivery_count=1, attempts=1,
    ))
    return mid


def _fresh_pass() -> None:
    """This job's cursor is its own state: start the LIS walk from the beginning for this test's rows."""
    with unit_of_work() as uow:
        uow.session.execute(sa.delete(JobState).where(JobState.job == "retention"))


def test_retention_purges_old_rows_keeps_recent_ones_and_never_touches_audit_rows(database_url):
    now = utcnow()
    consumer = f"t-{uuid.uuid4().hex[:8]}"
    old_audit_action = f"test.{uuid.uuid4().hex[:8]}"
    keep_days = get_settings().lis_raw_retention_days
    with unit_of_work() as uow:
        pid = make_patient(uow)
        uow.session.execute(sa.insert(ProcessedEvent).values([
            {"consumer": consumer, "source": "/t", "event_id": "old", "processed_at": now - timedelta(days=31)},
            {"consumer": consumer, "source": "/t", "event_id": "recent", "processed_at": now - timedelta(days=29)},
        ]))
        old_msg = _lis_message(uow, pid, now - timedelta(days=keep_days + 1))
        new_msg = _lis_message(uow, pid, now - timedelta(days=keep_days - 1))
        # Audit rows far older than anything retention purges.
        uow.session.execute(sa.insert(AuditEntry).values([
            {"principal": "test", "action": old_audit_action, "patient_ids": [pid], "outcome": "success",
             "at": now - timedelta(days=3650)},
            {"principal": "test", "action": old_audit_action, "patient_ids": [pid], "outcome": "success",
             "at": now - timedelta(days=40)},
        ]))
        old_run = uuid.uuid4()
        uow.session.execute(sa.insert(JobRun).values(
            id=old_run, job="retention", slot=now - timedelta(days=400, seconds=uuid.uuid4().int % 86400),
            trigger="cli", status="succeeded", attempt=1, started_at=now - timedelta(days=400), counts={}))
        before = {(m.id, m.raw_sha256, m.raw_size, m.control_id, m.status)
                  for m in uow.session.scalars(sa.select(LisMessage).where(LisMessage.id.in_([old_msg, new_msg])))}
    _fresh_pass()

    outcome = run_job("retention", slot=unique_minute(), trigger="schedule")
    assert outcome.status == "succeeded"
    assert outcome.counts["processed_events_deleted"] >= 1 and outcome.counts["lis_raw_purged"] >= 1

    with unit_of_work() as uow:
        left = uow.session.scalars(sa.select(ProcessedEvent.event_id).where(ProcessedEvent.consumer == consumer)).all()
        assert left == ["recent"]
        messages = {m.id: m for m in uow.session.scalars(sa.select(LisMessage).where(LisMessage.id.in_([old_msg, new_msg])))}
        assert messages[old_msg].raw is None and messages[new_msg].raw is not None
        # metadata kept
        assert {(m.id, m.raw_sha256, m.raw_size, m.control_id, m.status) for m in messages.values()} == before
        assert uow.session.get(JobRun, old_run) is None
        audit_rows = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == old_audit_action)).all()
        assert len(audit_rows) == 2
        purge = uow.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "jobs.retention.lis_raw_purged", AuditEntry.patient_ids.contains([pid]))).all()
        assert [(a.principal, a.details["run_id"]) for a in purge] == [("system:jobs", str(outcome.run_id))]


def test_retention_out_of_budget_resumes_where_it_stopped(database_url, monkeypatch):
    now = utcnow()
    keep_days = get_settings().lis_raw_retention_days
    with unit_of_work() as uow:
        pid = make_patient(uow)
        # Older than any other test's rows, so the walk (restarted below) meets these first.
        ids = [_lis_message(uow, pid, now - timedelta(days=max(keep_days, 9000) + 10, minutes=i)) for i in range(3)]
    _fresh_pass()
    ids.reverse()  # oldest first
    monkeypatch.setattr(retention, "BATCH_SIZE", 1)
    # Every step and batch reads the clock once: budget for the two cheap steps and one LIS batch.
    ticks = itertools.count()
    clock = lambda: float(next(ticks))  # noqa: E731
    stopped = None
    for _ in range(50):  # the first steps may find other tests' old rows; go until the LIS walk starts
        stopped = run_job("retention", slot=unique_minute(), trigger="schedule", budget_seconds=3.5, clock=clock)
        if stopped.counts.get("lis_raw_purged"):
            break
    assert stopped.status == "incomplete"
    with unit_of_work() as uow:
        raw = {m.id: m.raw for m in uow.session.scalars(sa.select(LisMessage).where(LisMessage.id.in_(ids)))}
        cursor = uow.session.get(JobState, "retention").cursor["lis_raw_after"]
    purged = [i for i in ids if raw[i] is None]
    assert purged and purged == ids[: len(purged)] and len(purged) < 3  # the oldest first, and not all
    assert cursor[1] == str(purged[-1])

    monkeypatch.setattr(retention, "BATCH_SIZE", 1000)
    assert run_job("retention", slot=unique_minute(), trigger="schedule", budget_seconds=600).status == "succeeded"
    with unit_of_work() as uow:
        assert all(m.raw is None for m in uow.session.scalars(sa.select(LisMessage).where(LisMessage.id.in_(ids))))


def _export(uow, status: str, *, expires_in: timedelta | None, idle: timedelta = timedelta(0)) -> tuple[uuid.UUID, uuid.UUID]:
    from shared.models import FhirExport, FhirExportChunk, FhirExportFile  # noqa: PLC0415

    now = utcnow()
    export_id, file_id = uuid.uuid4(), uuid.uuid4()
    uow.session.add(FhirExport(id=export_id, level="system", types=["Patient"], request_url="x", status=status,
                               step=0, type_index=0, written=1, transaction_time=now, created_at=now - idle,
                               updated_at=now - idle, expires_at=now + expires_in if expires_in is not None else None))
    uow.flush()
    uow.session.add(FhirExportFile(id=file_id, export_id=export_id, resource_type="Patient", part=0, count=1, created_at=now))
    uow.flush()
    uow.session.add(FhirExportChunk(file_id=file_id, seq=0, lines=1, body="{}\n"))
    return export_id, file_id


def test_retention_deletes_expired_and_abandoned_exports_files_and_keeps_live_ones(database_url):
    from shared.models import FhirExport, FhirExportChunk, FhirExportFile  # noqa: PLC0415

    hours = get_settings().fhir_export_retention_hours
    with unit_of_work() as uow:
        expired = _export(uow, "completed", expires_in=timedelta(seconds=-1))
        live = _export(uow, "completed", expires_in=timedelta(hours=1))
        abandoned = _export(uow, "in-progress", expires_in=None, idle=timedelta(hours=hours + 1))
        running = _export(uow, "in-progress", expires_in=None, idle=timedelta(minutes=1))
    outcome = run_job("retention", slot=unique_minute(), trigger="schedule")
    assert outcome.status == "succeeded"
    with unit_of_work() as uow:
        files = set(uow.session.scalars(sa.select(FhirExportFile.id)))
        chunks = set(uow.session.scalars(sa.select(FhirExportChunk.file_id)))
        assert expired[1] not in files and abandoned[1] not in files and expired[1] not in chunks
        assert live[1] in files and running[1] in files and live[1] in chunks
        states = {e.id: (e.status, e.error) for e in uow.session.scalars(sa.select(FhirExport).where(
            FhirExport.id.in_([expired[0], abandoned[0], running[0]])))}
    assert states == {expired[0]: ("completed", None), abandoned[0]: ("failed", "abandoned"),
                      running[0]: ("in-progress", None)}
