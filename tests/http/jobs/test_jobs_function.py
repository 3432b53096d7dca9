"""The jobs function through functions-framework's test client: PingSource ticks and broker events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from cloudevents.http import CloudEvent
from sqlalchemy import exc as sa_exc

from shared.db import unit_of_work
from shared.events import catalog
from shared.jobs import registry
from shared.jobs.context import JobResult
from shared.models import Patient, ProcessedEvent
from shared.models.base import utcnow
from shared.models.job_runs import JobRun
from shared.models.jobs import DataQualityIssue, OrderOverdueNotice
from tests.support.jobs_data import binary, make_order, make_patient, runs_of, structured_base64, tick, unique_minute


def _post(client, event_or_pair):
    headers, body = event_or_pair if isinstance(event_or_pair, tuple) else binary(event_or_pair)
    return client.post("/", headers=headers, data=body)


def test_the_same_tick_twice_and_two_ids_for_one_slot_run_the_job_once(jobs_client):
    minute = unique_minute()
    first = tick("lis-reconcile", minute + timedelta(milliseconds=120))
    deliveries = [
        first,
        first,  # the same tick redelivered
        tick("lis-reconcile", minute + timedelta(milliseconds=480)),  # the same slot under another id
        structured_base64(tick("lis-reconcile", minute + timedelta(milliseconds=300))),  # re-serialised by a hop
    ]
    assert [_post(jobs_client, d).status_code for d in deliveries] == [200, 200, 200, 200]
    with unit_of_work() as uow:
        runs = runs_of(uow, "lis-reconcile", minute)
    assert [(r.status, r.trigger, r.event_id, r.attempt) for r in runs] == [("succeeded", "schedule", first["id"], 1)]

    # The next scheduled tick is a new slot.
    assert _post(jobs_client, tick("lis-reconcile", minute + timedelta(hours=1, milliseconds=10))).status_code == 200
    with unit_of_work() as uow:
        assert len(runs_of(uow, "lis-reconcile", minute + timedelta(hours=1))) == 1


def test_a_nightly_tick_maps_to_its_scheduled_time(jobs_client):
    day = unique_minute().replace(hour=3, minute=30, second=0)
    assert _post(jobs_client, tick("retention", day + timedelta(milliseconds=250))).status_code == 200
    with unit_of_work() as uow:
        assert [r.status for r in runs_of(uow, "retention", day)] == ["succeeded"]


def test_a_tick_without_data_runs_the_job_its_pingsource_is_named_after(jobs_client):
    minute = unique_minute()
    event = CloudEvent({"type": "dev.knative.sources.ping", "id": str(uuid.uuid4()),
                        "source": "/apis/v1/namespaces/patient-mgt/pingsources/lis-reconcile",
                        "time": (minute + timedelta(milliseconds=5)).isoformat()}, None)
    assert _post(jobs_client, event).status_code == 200
    with unit_of_work() as uow:
        assert len(runs_of(uow, "lis-reconcile", minute)) == 1


def test_an_unknown_job_is_acknowledged_and_runs_nothing(jobs_client):
    name = f"defrag-{uuid.uuid4().hex[:6]}"
    resp = _post(jobs_client, tick(name, unique_minute()))
    assert resp.status_code == 200
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(JobRun).where(JobRun.job == name)) == 0


@dataclass(frozen=True)
class _FlakyJob(registry.Job):
    def load(self):  # noqa: ANN201
        attempts = _FlakyJob.attempts

        def work(ctx):  # noqa: ANN001, ANN202
            attempts.append(ctx.run_id)
            if len(attempts) == 1:
                raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))
            return JobResult()

        return work


def test_a_transient_fault_is_503_and_the_redelivered_tick_runs_the_job(jobs_client, monkeypatch):
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    _FlakyJob.attempts = []
    monkeypatch.setitem(registry.JOBS, name, _FlakyJob(name, "* * * * *", "Etc/UTC", "test", "-"))
    event = tick(name, unique_minute() + timedelta(milliseconds=50))
    resp = _post(jobs_client, event)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert resp.get_json() == {"status": "retry", "reason": "database_unavailable"}
    assert _post(jobs_client, event).status_code == 200
    with unit_of_work() as uow:
        [run] = uow.session.scalars(sa.select(JobRun).where(JobRun.job == name)).all()
    assert (run.status, run.attempt) == ("succeeded", 2)


def _broker_event(event_type: str, data: dict, subject: uuid.UUID) -> CloudEvent:
    return CloudEvent({"type": event_type, "source": "/patient-mgt/api", "id": str(uuid.uuid4()),
                       "subject": str(subject), "datacontenttype": "application/json"}, data)


@pytest.mark.parametrize("event_type", [catalog.PATIENT_UPDATED, catalog.LIS_PATIENT_UPDATED, catalog.LIS_PATIENT_CREATED])
def test_a_patient_change_rechecks_that_patients_data_quality(jobs_client, event_type):
    with unit_of_work() as uow:
        pid = make_patient(uow, birth_date=None, email="nobody@")
    model = catalog.CATALOG[event_type][0]
    data = ({"patient_id": str(pid), "version": 2, "changed": ["email"]} if model is catalog.PatientUpdated
            else {"patient_id": str(pid), "version": 1, "origin": "lis"})
    event = _broker_event(event_type, data, pid)
    assert _post(jobs_client, event).status_code == 200
    assert _post(jobs_client, event).status_code == 200  # redelivery: deduped
    with unit_of_work() as uow:
        reasons = set(uow.session.scalars(sa.select(DataQualityIssue.reason).where(DataQualityIssue.patient_id == pid)))
        claimed = uow.session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)
                                     .where(ProcessedEvent.consumer == "jobs", ProcessedEvent.event_id == event["id"]))
    assert reasons == {"birth_date_missing", "email_invalid"} and claimed == 1


def test_event_data_that_does_not_fit_its_type_is_acknowledged_and_changes_nothing(jobs_client):
    pid = uuid.uuid4()
    event = _broker_event(catalog.PATIENT_UPDATED, {"patient": "x"}, pid)
    assert _post(jobs_client, event).status_code == 200
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(DataQualityIssue)
                                  .where(DataQualityIssue.patient_id == pid)) == 0


def test_a_merge_takes_the_source_off_the_report_and_rechecks_the_target(jobs_client):
    with unit_of_work() as uow:
        target = make_patient(uow, phone="555")
        source = make_patient(uow, birth_date=None)
        from shared.jobs.data_quality import check_patients  # noqa: PLC0415

        check_patients(uow, [source])
        uow.session.execute(sa.update(Patient).where(Patient.id == source).values(status="merged", merged_into=target))
    event = _broker_event(catalog.PATIENT_MERGED, {"patient_id": str(source), "target_id": str(target),
                                                   "moved": {"orders": 0}}, source)
    assert _post(jobs_client, event).status_code == 200
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(DataQualityIssue.patient_id, DataQualityIssue.reason)
                                   .where(DataQualityIssue.patient_id.in_([source, target]))).all()
    assert rows == [(target, "phone_invalid")]


def test_an_unmerge_puts_the_former_source_back_on_the_report(jobs_client):
    with unit_of_work() as uow:
        target = make_patient(uow)
        source = make_patient(uow, birth_date=None)  # active again after the unmerge, and still without a birth date
    event = _broker_event(catalog.PATIENT_UNMERGED, {"patient_id": str(source), "target_id": str(target), "version": 4,
                                                     "restored": {"identifiers": 1, "identifiers_kept": 0, "records": 0}},
                          source)
    assert _post(jobs_client, event).status_code == 200
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(DataQualityIssue.patient_id, DataQualityIssue.reason)
                                   .where(DataQualityIssue.patient_id.in_([source, target]))).all()
    assert rows == [(source, "birth_date_missing")]


def test_an_order_overdue_event_is_recorded_on_its_notice(jobs_client):
    with unit_of_work() as uow:
        pid = make_patient(uow)
        order = make_order(uow, pid, ordered_at=utcnow() - timedelta(days=3))
        uow.session.execute(sa.insert(OrderOverdueNotice).values(order_id=order, patient_id=pid, detected_at=utcnow()))
    event = _broker_event(catalog.ORDER_OVERDUE, {"patient_id": str(pid), "order_id": str(order),
                                                  "ordered_at": None, "overdue_hours": 24}, pid)
    assert _post(jobs_client, event).status_code == 200
    with unit_of_work() as uow:
        assert uow.session.get(OrderOverdueNotice, order).recorded_at is not None
